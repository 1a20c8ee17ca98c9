"""Istio-standard request metrics for a drill, as counters the store receives: per client
cluster a steady request rate, a 5xx share and a latency histogram, with the fault of the
drill (an abort and a delay in c2 only) during [start, end)."""

from __future__ import annotations

from tests.helpers.remote_write import Series

BUCKETS = (5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, float("inf"))
RATES = {"c1": 40.0, "c2": 50.0, "c3": 60.0}
BASE_ERRORS = 0.002
FAULT_ERRORS = 0.25
FAULT_SLOW = 0.10
"""Share of c2's requests delayed to 2.5 s during the fault."""
STEP_S = 5


def _latency_share(le: float, slow: float) -> float:
    """Share of requests at most ``le`` ms: 60 % <= 10 ms, 99 % <= 50 ms, ``slow`` at 2.5 s."""
    fast = {5.0: 0.2, 10.0: 0.6, 25.0: 0.9, 50.0: 0.99}.get(le, 1.0)
    return fast * (1 - slow) + (slow if le >= 2500.0 else 0.0)


def drill_series(
    *, first: int, last: int, start: float, end: float, service: str, namespace: str
) -> list[Series]:
    """Cumulative counters every ``STEP_S`` seconds in [first, last] (unix seconds)."""
    out: list[Series] = []
    for cluster, rate in RATES.items():
        base = {
            "source_cluster": cluster,
            "destination_cluster": "c1",
            "destination_service_name": service,
            "destination_service_namespace": namespace,
            "reporter": "source",
        }
        ok: list[tuple[int, float]] = []
        bad: list[tuple[int, float]] = []
        buckets: dict[float, list[tuple[int, float]]] = {le: [] for le in BUCKETS}
        n_ok = n_bad = 0.0
        n_le = dict.fromkeys(BUCKETS, 0.0)
        for t in range(first, last + 1, STEP_S):
            faulty = cluster == "c2" and start <= t < end
            total = rate * STEP_S
            errors = total * (FAULT_ERRORS if faulty else BASE_ERRORS)
            n_ok += total - errors
            n_bad += errors
            for le in BUCKETS:
                n_le[le] += total * _latency_share(le, FAULT_SLOW if faulty else 0.0)
                buckets[le].append((t * 1000, n_le[le]))
            ok.append((t * 1000, n_ok))
            bad.append((t * 1000, n_bad))
        out.append(({"__name__": "istio_requests_total", **base, "response_code": "200"}, ok))
        out.append(({"__name__": "istio_requests_total", **base, "response_code": "503"}, bad))
        for le, points in buckets.items():
            labels = {"__name__": "istio_request_duration_milliseconds_bucket", **base}
            labels["le"] = "+Inf" if le == float("inf") else f"{le:g}"
            out.append((labels, points))
    return out

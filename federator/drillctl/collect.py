"""Fetch what a report needs from the store: golden signals and exemplar error traces.

Thin: the windows and the PromQL come from ``signals`` (pure), the calls from ``store``.
A store that does not answer does not stop the report: every failure becomes a line in
``Telemetry.problems``, which the report prints, so an aborted drill at 3 a.m. still gets its
timeline and verdict even if the store is the thing that broke.
"""

from __future__ import annotations

from federator.core.drills.journal import EventType, Journal
from federator.core.drills.spec import DrillSpec
from federator.core.model import ServiceKey
from federator.drillctl.report import Exemplar, Telemetry
from federator.drillctl.signals import Points, Signal, queries, windows
from federator.drillctl.store import StoreClient, StoreError

MAX_EXEMPLARS = 5
LOG_LINES = 5


def collect(
    *, store: StoreClient | None, spec: DrillSpec | None, journal: Journal | None, now: float
) -> Telemetry:
    if journal is None or journal.started_at is None or spec is None:
        return Telemetry(problems=("the drill did not start: no golden signals to show",))
    exit_at = next((e.at for e in journal.events if e.type is EventType.EXIT), None)
    verified = [e.at for e in journal.events if e.type is EventType.VERIFIED]
    w = windows(
        started=journal.started_at,
        ended=exit_at if exit_at is not None else now,
        verified=verified[-1] if verified else None,
        now=now,
    )
    if store is None:
        return Telemetry(
            windows=w,
            problems=("no store given (--store or $MESHFED_STORE_URL): no golden signals",),
        )
    problems: list[str] = []
    series: dict[ServiceKey, dict[Signal, dict[str, Points]]] = {}
    texts: dict[ServiceKey, dict[Signal, str]] = {}
    for key in spec.services:
        texts[key] = queries(key, w.rate_window)
        series[key] = {}
        for signal, expr in texts[key].items():
            try:
                series[key][signal] = store.query_range(
                    expr, start=w.first, end=w.stop, step=w.step
                )
            except StoreError as exc:
                problems.append(f"{key} {signal.value}: {exc}")
    exemplars: list[Exemplar] = []
    per_service = max(1, MAX_EXEMPLARS // len(spec.services))
    for key in spec.services:
        exemplars += _exemplars(
            store, key, start=w.start, end=w.end, limit=per_service, problems=problems
        )
    return Telemetry(
        windows=w,
        series=series,
        exemplars=tuple(exemplars),
        problems=tuple(problems),
        queries=texts,
    )


def _exemplars(
    store: StoreClient,
    key: ServiceKey,
    *,
    start: float,
    end: float,
    limit: int,
    problems: list[str],
) -> list[Exemplar]:
    """Error traces of ``key`` (spans name the service by its short name, as Istio's do)."""
    exemplars: list[Exemplar] = []
    try:
        for ref in store.error_traces(service=key.name, start=start, end=end, limit=limit):
            try:
                logs = store.trace_logs(ref.trace_id, limit=LOG_LINES)
            except StoreError as exc:
                problems.append(f"logs of trace {ref.trace_id}: {exc}")
                logs = []
            exemplars.append(
                Exemplar(
                    trace_id=ref.trace_id,
                    url=store.trace_url(ref.trace_id),
                    root=ref.root,
                    at=ref.start,
                    duration_ms=ref.duration_ms,
                    logs=tuple((g.at, g.cluster, g.severity, g.body) for g in logs),
                )
            )
    except StoreError as exc:
        problems.append(f"error traces of {key}: {exc}")
    return exemplars

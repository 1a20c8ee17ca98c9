"""Known telemetry for the console's browser tests: what the pages must show is computed here.

Istio-standard metrics (``istio_requests_total`` and the request duration histogram, at fixed
rates and a fixed latency distribution) go to the collector over remote_write, with history
and then live like a Prometheus remote-writing its scrapes; spans and logs of two-hop traces
go over OTLP/HTTP. A test compares what a page shows with these numbers.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from tests.helpers.remote_write import HEADERS, Series, encode_write_request, snappy_block
from tests.integration.console.world import Collector

RATES = {"c1": (9.0, 1.0), "c2": (2.0, 0.0)}
"""Requests per second to reviews per cluster: (200s, 503s)."""
BUCKETS = (("10", 0.0), ("50", 1.0), ("100", 1.0), ("500", 1.0), ("+Inf", 1.0))
"""Share of requests at or under each bound: every request takes 10..50 ms, so p50 = 30 ms
and p99 = 49.6 ms by Prometheus' linear interpolation."""
HISTORY_S = 900
STEP_S = 15


def istio_series(
    now_s: float, namespace: str, *, start: int | None = None, history: bool = True
) -> list[Series]:
    """``istio_requests_total`` and the duration histogram of <namespace>/reviews per cluster:
    counters that started at ``start``, sampled every STEP_S up to ``now_s`` (``history``) or
    once at ``now_s``."""
    base = {
        "reporter": "destination",
        "destination_service_name": "reviews",
        "destination_service_namespace": namespace,
        "source_workload": "productpage-v1",
    }
    start = int(now_s) - HISTORY_S if start is None else start
    times: list[float] = (
        list(range(start, int(now_s) + 1, STEP_S)) if history else [round(now_s, 3)]
    )
    out: list[Series] = []
    for cluster, (ok, failed) in RATES.items():
        for code, rate in (("200", ok), ("503", failed)):
            labels = {
                **base,
                "__name__": "istio_requests_total",
                "cluster": cluster,
                "response_code": code,
            }
            out.append((labels, [(int(t * 1000), rate * (t - start)) for t in times]))
        for le, share in BUCKETS:
            labels = {
                **base,
                "__name__": "istio_request_duration_milliseconds_bucket",
                "cluster": cluster,
                "le": le,
            }
            total = ok + failed
            out.append((labels, [(int(t * 1000), share * total * (t - start)) for t in times]))
    return out


def write_metrics(collector: Collector, now_s: float, namespace: str, **kw: Any) -> None:
    body = snappy_block(encode_write_request(istio_series(now_s, namespace, **kw)))
    r = httpx.post(f"{collector.url}/api/v1/write", content=body, headers=HEADERS, timeout=30)
    assert r.status_code == 204, r.text


@contextlib.contextmanager
def metrics_flowing(
    collector: Collector, namespace: str, interval_s: float = 2.0
) -> Iterator[None]:
    """The history, then one fresh sample per series every ``interval_s`` until the block ends,
    as a Prometheus remote-writing its scrapes would."""
    now = time.time()
    start = int(now) - HISTORY_S
    write_metrics(collector, now, namespace, start=start)
    stopping = threading.Event()

    def feed() -> None:
        last = now
        while not stopping.wait(interval_s):
            t = time.time()
            if t > last:
                with contextlib.suppress(httpx.HTTPError, AssertionError):
                    write_metrics(collector, t, namespace, start=start, history=False)
                last = t

    feeder = threading.Thread(target=feed, name="metrics-feeder", daemon=True)
    feeder.start()
    try:
        yield
    finally:
        stopping.set()
        feeder.join(timeout=30)


def _kv(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def write_traces_and_logs(
    collector: Collector, traces: int, *, seed: int = 7, root: str = "productpage"
) -> list[str]:
    """``traces`` traces ``root`` (c1) -> reviews (c2), every third failed; two log lines
    per trace carrying its id. Returns the trace ids (hex)."""
    rng = random.Random(seed)
    now = time.time_ns()
    spans = ExportTraceServiceRequest()
    logs = ExportLogsServiceRequest()
    ids = []
    hops = {"c1": spans.resource_spans.add(), "c2": spans.resource_spans.add()}
    for cluster, rs in hops.items():
        service = root if cluster == "c1" else "reviews"
        rs.resource.attributes.extend([_kv("service.name", service), _kv("cluster", cluster)])
    log_rs = {c: logs.resource_logs.add() for c in hops}
    for c, rs in log_rs.items():
        rs.resource.attributes.extend([_kv("cluster", c)])
    root_scope = hops["c1"].scope_spans.add()
    child_scope = hops["c2"].scope_spans.add()
    log_scopes = {c: rs.scope_logs.add() for c, rs in log_rs.items()}
    for c, scope in log_scopes.items():
        scope.scope.name = f"istio-proxy.{c}"
    for i in range(traces):
        trace_id, root_id, child_id = rng.randbytes(16), rng.randbytes(8), rng.randbytes(8)
        ids.append(trace_id.hex())
        start = now - (traces - i) * 1_000_000_000
        failed = i % 3 == 0
        root = root_scope.spans.add(
            trace_id=trace_id,
            span_id=root_id,
            name="GET /productpage",
            kind=2,
            start_time_unix_nano=start,
            end_time_unix_nano=start + 40_000_000,
        )
        child = child_scope.spans.add(
            trace_id=trace_id,
            span_id=child_id,
            parent_span_id=root_id,
            name="GET /reviews",
            kind=2,
            start_time_unix_nano=start + 5_000_000,
            end_time_unix_nano=start + 30_000_000,
        )
        if failed:
            root.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message="upstream 503"))
            child.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message="503"))
        for cluster, span_id, text in (
            ("c1", root_id, "GET /productpage"),
            ("c2", child_id, "GET /reviews"),
        ):
            code = 503 if failed else 200
            log_scopes[cluster].log_records.add(
                time_unix_nano=start + 1_000_000,
                severity_number=17 if failed else 9,
                severity_text="ERROR" if failed else "INFO",
                body=AnyValue(string_value=f"{text} {code} trace={i}"),
                trace_id=trace_id,
                span_id=span_id,
            )
    pb = {"Content-Type": "application/x-protobuf"}
    for path, message in (("/v1/traces", spans), ("/v1/logs", logs)):
        r = httpx.post(
            f"{collector.otlp}{path}", content=message.SerializeToString(), headers=pb, timeout=30
        )
        assert r.status_code == 200, (path, r.status_code, r.text)
    return ids

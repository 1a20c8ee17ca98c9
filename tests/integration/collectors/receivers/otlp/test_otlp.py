"""OTLP receivers against real senders: the OpenTelemetry SDK's gRPC and HTTP exporters, raw
gRPC and HTTP clients for the error paths, an embedded Redis store, and the query APIs.

The SDK exporters are synchronous, so they run in a thread while the receivers serve on the
test's event loop. Every record sent is looked up again through ``/api/traces``,
``/api/logs`` and ``/api/v1/query``.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogs
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
    OTLPMetricExporter as GrpcMetrics,
)
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogs
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as HttpMetrics,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from tests.helpers.otlp_harness import (
    LIMIT,
    PB,
    Running,
    post,
    running_fixture,  # noqa: F401 - the ``running`` fixture
    trace_request,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass(frozen=True)
class Exporters:
    spans: Any
    logs: Any
    metrics: Any


def _grpc_exporters(port: int) -> Exporters:
    endpoint = f"http://127.0.0.1:{port}"
    return Exporters(
        GrpcSpans(endpoint=endpoint, insecure=True, timeout=10),
        GrpcLogs(endpoint=endpoint, insecure=True, timeout=10),
        GrpcMetrics(endpoint=endpoint, insecure=True, timeout=10),
    )


def _http_exporters(port: int) -> Exporters:
    base = f"http://127.0.0.1:{port}/v1"
    return Exporters(
        HttpSpans(endpoint=f"{base}/traces", timeout=10, compression=Compression.Gzip),
        HttpLogs(endpoint=f"{base}/logs", timeout=10),
        HttpMetrics(endpoint=f"{base}/metrics", timeout=10),
    )


class _Recording:
    """Delegates to an SDK exporter and keeps each ``export`` result (the processors drop it)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.results: list[Any] = []

    def export(self, batch: Any) -> Any:
        result = self.inner.export(batch)
        self.results.append(result)
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def _send_with_sdk(exporters: Exporters, run_id: str) -> str:
    """Spans, a log line and four kinds of metrics through the SDK; returns the trace id."""
    resource = Resource.create({"service.name": f"svc-{run_id}", "cluster": "east"})
    span_exporter, log_exporter = _Recording(exporters.spans), _Recording(exporters.logs)
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))  # type: ignore[arg-type]
    tracer = tracer_provider.get_tracer("meshfed.test")
    with tracer.start_as_current_span(f"root-{run_id}") as root:
        with tracer.start_as_current_span("child") as child:
            child.set_attribute("http.status_code", 200)
        trace_id = format(root.get_span_context().trace_id, "032x")

        log_provider = LoggerProvider(resource=resource)
        log_provider.add_log_record_processor(SimpleLogRecordProcessor(log_exporter))  # type: ignore[arg-type]
        log_provider.get_logger("meshfed.test").emit(
            timestamp=time.time_ns(),
            severity_number=SeverityNumber.WARN,
            severity_text="WARN",
            body=f"hello from {run_id}",
            attributes={"run": run_id},
        )
    tracer_provider.shutdown()
    log_provider.shutdown()
    assert [r.name for r in span_exporter.results] == ["SUCCESS", "SUCCESS"]
    assert [r.name for r in log_exporter.results] == ["SUCCESS"]

    reader = PeriodicExportingMetricReader(exporters.metrics, export_interval_millis=3_600_000)
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    meter = meter_provider.get_meter("meshfed.test")
    meter.create_counter("test.requests").add(3, {"route": "/a"})
    meter.create_up_down_counter("test.inflight").add(-2)
    meter.create_histogram("test.latency", unit="ms").record(7.0, {"route": "/a"})
    meter.create_gauge("test.temperature").set(21.5)
    meter_provider.force_flush()
    meter_provider.shutdown()
    return trace_id


async def _prom(running: Running, query: str) -> list[dict[str, Any]]:
    response = await running.query.get("/api/v1/query", params={"query": query})
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result


@pytest.mark.parametrize(
    "make_exporters",
    [pytest.param(_grpc_exporters, id="grpc"), pytest.param(_http_exporters, id="http")],
)
async def test_sdk_exporters_are_queryable(
    running: Running, make_exporters: Callable[[int], Exporters]
) -> None:
    run_id = uuid.uuid4().hex[:8]
    port = running.grpc_port if make_exporters is _grpc_exporters else running.http_port
    trace_id = await asyncio.to_thread(_send_with_sdk, make_exporters(port), run_id)

    trace = (await running.query.get(f"/api/traces/{trace_id}")).json()
    spans = [s for b in trace["batches"] for ss in b["scopeSpans"] for s in ss["spans"]]
    assert sorted(s["name"] for s in spans) == sorted([f"root-{run_id}", "child"])

    logs = (await running.query.get("/api/logs", params={"contains": run_id})).json()["logs"]
    assert [entry["body"] for entry in logs] == [f"hello from {run_id}"]
    assert logs[0]["traceId"] == trace_id

    job = f'job="svc-{run_id}",cluster="east"'
    [counter] = await _prom(running, f'test_requests_total{{{job},route="/a"}}')
    assert counter["value"][1] == "3"
    [gauge] = await _prom(running, f"test_inflight{{{job}}}")
    assert gauge["value"][1] == "-2"
    [gauge] = await _prom(running, f"test_temperature{{{job}}}")
    assert gauge["value"][1] == "21.5"
    buckets = await _prom(running, f'test_latency_bucket{{{job},le=~"5|10|\\\\+Inf"}}')
    assert {b["metric"]["le"]: b["value"][1] for b in buckets} == {"5": "0", "10": "1", "+Inf": "1"}
    [total] = await _prom(running, f"test_latency_sum{{{job}}}")
    assert total["value"][1] == "7"
    assert running.count("meshfed_receiver_stored_total", signal="spans") >= 2


async def test_http_json_with_hex_ids_answers_json(running: Running) -> None:
    trace_id, name = uuid.uuid4().hex, f"json-{uuid.uuid4().hex[:6]}"
    now = time.time_ns()
    body = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "j"}}]
                },
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": trace_id.upper(),
                                "spanId": "00f067aa0ba902b7",
                                "name": name,
                                "kind": 2,
                                "startTimeUnixNano": str(now - 5000),
                                "endTimeUnixNano": str(now),
                                "futureField": {"ignored": True},
                            }
                        ]
                    }
                ],
            }
        ]
    }
    response = await post(running, json.dumps(body).encode(), {"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {}
    trace = (await running.query.get(f"/api/traces/{trace_id}")).json()
    [span] = [s for b in trace["batches"] for ss in b["scopeSpans"] for s in ss["spans"]]
    assert (span["name"], span["spanId"], span["kind"]) == (
        name,
        "00f067aa0ba902b7",
        "SPAN_KIND_SERVER",
    )


async def test_http_partial_success_keeps_the_good_spans(running: Running) -> None:
    request = trace_request([b"\x01" * 8, b"\x02" * 3], "partial")
    response = await post(running, request.SerializeToString(), PB)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-protobuf"
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 1
    assert "span id" in answer.partial_success.error_message
    good = request.resource_spans[0].scope_spans[0].spans[0].trace_id.hex()
    assert (await running.query.get(f"/api/traces/{good}")).status_code == 200


def _gzip_bomb() -> bytes:
    return gzip.compress(b"\x00" * (16 * 1024 * 1024), compresslevel=9)


@pytest.mark.parametrize(
    ("body", "headers", "status", "reason"),
    [
        pytest.param(b"{}", {"Content-Type": "text/plain"}, 415, "unsupported_media", id="415"),
        pytest.param(b"\xff\xff\xff", PB, 400, "bad_request", id="garbage-protobuf"),
        pytest.param(
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}',
            {"Content-Type": "application/json"},
            400,
            "bad_request",
            id="json-id-not-hex",
        ),
        pytest.param(
            b"[" * 100_000,
            {"Content-Type": "application/json"},
            400,
            "bad_request",
            id="json-depth-bomb",
        ),
        pytest.param(b"\x00" * (LIMIT + 1), PB, 413, "too_large", id="oversized"),
        pytest.param(
            _gzip_bomb(), {**PB, "Content-Encoding": "gzip"}, 413, "too_large", id="gzip-bomb"
        ),
        pytest.param(b"x", {**PB, "Content-Encoding": "br"}, 415, "unsupported_media", id="br"),
        pytest.param(
            b"\x1f\x8b\x08garbage",
            {**PB, "Content-Encoding": "gzip"},
            400,
            "bad_request",
            id="bad-gzip",
        ),
    ],
)
async def test_http_bad_input_is_refused_and_counted(
    running: Running, body: bytes, headers: dict[str, str], status: int, reason: str
) -> None:
    before = running.count("meshfed_receiver_rejected_total", reason=reason)
    response = await post(running, body, headers)
    assert response.status_code == status, response.text
    assert running.count("meshfed_receiver_rejected_total", reason=reason) == before + 1
    ok = await post(running, trace_request([b"\x03" * 8], "after").SerializeToString(), PB)
    assert ok.status_code == 200

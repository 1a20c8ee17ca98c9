"""Parameter parsing of the trace and log APIs, search matching rules, OTLP-JSON. No sockets."""

from __future__ import annotations

from typing import Any

import pytest

from collectors._core.errors import ParamError
from collectors._core.model import Span, SpanId, SpanKind, TraceId
from collectors.api import trace_log_params as p
from collectors.api.trace_json import span_json, tempo_batches
from collectors.store.trace_query import NO_ROOT, TraceQuery, summarize, trace_matches

TID = TraceId("0af7651916cd43dd8448eb211c80319c")


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        pytest.param("100ms", 100_000_000, id="ms"),
        pytest.param("1.5s", 1_500_000_000, id="fractional-s"),
        pytest.param("1h2m", 3_720_000_000_000, id="compound"),
        pytest.param("250us", 250_000, id="us"),
        pytest.param("3µs", 3_000, id="micro-sign"),
        pytest.param("7ns", 7, id="ns"),
    ],
)
def test_go_durations(text: str, ns: int) -> None:
    assert p.duration_ns("minDuration", text) == ns


@pytest.mark.parametrize("text", ["", "10", "1x", "ms", "1s junk", "-1s"])
def test_bad_durations_name_the_parameter(text: str) -> None:
    with pytest.raises(ParamError) as e:
        p.duration_ns("maxDuration", text)
    assert e.value.parameter == "maxDuration"


@pytest.mark.parametrize(
    ("text", "tags"),
    [
        pytest.param("", {}, id="empty"),
        pytest.param("a=1", {"a": "1"}, id="one"),
        pytest.param(
            'a=1  b="two words" c=', {"a": "1", "b": "two words", "c": ""}, id="quoted-and-empty"
        ),
        pytest.param(r'q="say \"hi\""', {"q": 'say "hi"'}, id="escaped-quote"),
    ],
)
def test_logfmt_tags(text: str, tags: dict[str, str]) -> None:
    assert p.logfmt_tags("tags", text) == tags


@pytest.mark.parametrize("text", ['"a=1', "novalue", "a=1 =2", 'a="open'])
def test_bad_logfmt(text: str) -> None:
    with pytest.raises(ParamError):
        p.logfmt_tags("tags", text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("ABC", "00000000000000000000000000000abc", id="short-upper"),
        pytest.param(str(TID), str(TID), id="full"),
    ],
)
def test_trace_ids(text: str, expected: str) -> None:
    assert p.trace_id("traceID", text) == expected


@pytest.mark.parametrize("text", ["", "0", "g1", "a" * 33, "12 34"])
def test_bad_trace_ids(text: str) -> None:
    with pytest.raises(ParamError):
        p.trace_id("traceID", text)


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        pytest.param("1700000000", 1_700_000_000 * 10**9, id="seconds"),
        pytest.param("1700000000.5", 1_700_000_000_500_000_000, id="fractional"),
        pytest.param("2023-11-14T22:13:20Z", 1_700_000_000 * 10**9, id="rfc3339-z"),
        pytest.param(
            "2023-11-14T23:13:20.25+01:00", 1_700_000_000_250_000_000, id="rfc3339-offset"
        ),
    ],
)
def test_times(text: str, ns: int) -> None:
    assert p.time_ns("start", text) == ns


@pytest.mark.parametrize(
    ("text", "expected"),
    [("warn", 13), ("WARNING", 13), ("error", 17), ("0", 0), ("24", 24)],
)
def test_severities(text: str, expected: int) -> None:
    assert p.severity("severity", text) == expected


def mk(n: int, parent: int | None, start: int, end: int, **kw: Any) -> Span:
    return Span(
        trace_id=TID,
        span_id=SpanId(f"{n:016x}"),
        parent_span_id=SpanId(f"{parent:016x}") if parent else None,
        name=kw.pop("name", f"op{n}"),
        start_time_unix_nano=start,
        end_time_unix_nano=end,
        resource={"service.name": kw.pop("service", "svc")},
        **kw,
    )


def test_summary_of_a_trace_without_its_root() -> None:
    summary = summarize(TID, [mk(2, 1, 10, 20), mk(3, 2, 12, 30)])
    assert summary.root_service_name == NO_ROOT
    assert (summary.start_time_unix_nano, summary.duration_ns) == (10, 20)


def test_search_duration_is_the_whole_trace_and_tags_one_span() -> None:
    spans = [mk(1, None, 0, 100, service="a"), mk(2, 1, 10, 20, service="b", attributes={"x": 1})]
    base: dict[str, Any] = {"start_unix_nano": 0, "end_unix_nano": 1000, "limit": 5}
    assert trace_matches(spans, TraceQuery(**base, service="b", min_duration_ns=100))
    assert not trace_matches(spans, TraceQuery(**base, service="b", max_duration_ns=99))
    assert trace_matches(spans, TraceQuery(**base, tags={"x": "1", "service.name": "b"}))
    assert not trace_matches(spans, TraceQuery(**base, tags={"x": "1", "service.name": "a"}))
    assert not trace_matches(spans, TraceQuery(0, 5, 5, service="b"))  # span starts at 10


def test_span_json_omits_defaults_like_protojson() -> None:
    out = span_json(mk(1, None, 1, 2, kind=SpanKind.INTERNAL))
    assert out == {
        "traceId": TID,
        "spanId": "0000000000000001",
        "name": "op1",
        "kind": "SPAN_KIND_INTERNAL",
        "startTimeUnixNano": "1",
        "endTimeUnixNano": "2",
        "status": {},
    }


def test_batches_group_by_resource_then_scope() -> None:
    spans = [
        mk(1, None, 1, 2, service="a"),
        mk(2, 1, 1, 2, service="b"),
        mk(3, 1, 1, 2, service="a"),
    ]
    batches = tempo_batches(spans)
    assert [len(b["scopeSpans"][0]["spans"]) for b in batches] == [2, 1]

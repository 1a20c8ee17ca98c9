"""Span and log encoding (OTLP protobuf), batch decoding and index entries. No sockets."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, TracesData

from collectors._core.errors import ConfigError, PermanentError
from collectors._core.model import (
    LogRecord,
    Severity,
    Span,
    SpanEvent,
    SpanId,
    SpanKind,
    SpanLink,
    StatusCode,
    TraceId,
)
from collectors.codecs.otlp_proto import (
    attributes_from_otlp,
    log_to_otlp,
    logs_from_otlp,
    spans_from_otlp,
    spans_to_otlp,
)
from collectors.store.trace_codec import decode_batches, encode_batch, index_entries
from collectors.store.trace_logs_settings import LogSettings, TraceSettings

TID = TraceId("0af7651916cd43dd8448eb211c80319c")


def full_span(n: int = 1, **kw: Any) -> Span:
    base: dict[str, Any] = {
        "trace_id": TID,
        "span_id": SpanId(f"{n:016x}"),
        "name": "GET /",
        "start_time_unix_nano": 1_700_000_000_000_000_000 + n,
        "end_time_unix_nano": 1_700_000_000_500_000_000,
        "parent_span_id": SpanId("b7ad6b7169203331"),
        "kind": SpanKind.CONSUMER,
        "status_code": StatusCode.ERROR,
        "status_message": "bad",
        "trace_state": "k=v",
        "attributes": {
            "s": "x",
            "b": False,
            "i": -(2**63),
            "f": 1.25,
            "raw": b"\x00\xff",
            "arr": [1, "two", [3.0]],
            "none": None,
        },
        "resource": {"service.name": "svc", "cluster": "c1"},
        "scope_name": "scope",
        "scope_version": "9",
        "events": (SpanEvent(5, "ev", {"k": 1}, 2),),
        "links": (SpanLink(TID, SpanId("00f067aa0ba902b7"), "t=1", {"l": True}, 3),),
        "dropped_attributes_count": 4,
        "dropped_events_count": 5,
        "dropped_links_count": 6,
    }
    base.update(kw)
    return Span(**base)


@pytest.mark.parametrize(
    "span",
    [
        pytest.param(full_span(), id="every-field"),
        pytest.param(Span(TID, SpanId("0000000000000001"), "", 0, 0), id="all-defaults"),
        pytest.param(
            full_span(parent_span_id=None, status_message="", kind=SpanKind.SERVER), id="root"
        ),
    ],
)
def test_span_round_trips_through_a_stored_batch(span: Span) -> None:
    spans, truncated = decode_batches([encode_batch([span])], max_spans=10)
    assert spans == [span]
    assert not truncated


def test_batches_are_deduplicated_sorted_and_bounded() -> None:
    a, b, c = (full_span(n, start_time_unix_nano=100 - n) for n in (1, 2, 3))
    batches = [encode_batch([a, b]), b"\xff not protobuf", encode_batch([b, c])]
    spans, truncated = decode_batches(batches, max_spans=10)
    assert [s.span_id for s in spans] == [c.span_id, b.span_id, a.span_id]
    assert not truncated
    spans, truncated = decode_batches(batches, max_spans=2)
    assert len(spans) == 2
    assert truncated


def realistic_trace(n: int) -> list[Span]:
    """Ten spans of one trace over three services, attributes as HTTP instrumentation sets."""
    return [
        full_span(
            i,
            trace_id=TraceId(f"{n:032x}"),
            name=f"GET /api/items/{{id}} {i % 3}",
            attributes={"http.method": "GET", "http.status_code": 200, "user.id": n * 10 + i},
            resource={"service.name": f"svc-{i % 3}", "k8s.pod.name": f"svc-{i % 3}-7f9c"},
            events=(),
            links=(),
        )
        for i in range(1, 11)
    ]


def test_stored_batches_are_compressed_and_much_smaller() -> None:
    spans = realistic_trace(7)
    stored = encode_batch(spans)
    plain = spans_to_otlp(spans).SerializeToString()
    assert stored.startswith(b"\x28\xb5\x2f\xfd")  # a zstd frame
    assert len(stored) * 2 < len(plain)
    assert decode_batches([stored], max_spans=100) == (spans, False)


@pytest.mark.parametrize(
    "stored",
    [
        pytest.param(lambda s: [spans_to_otlp(s).SerializeToString()], id="plain-only"),
        pytest.param(
            lambda s: [spans_to_otlp(s[:4]).SerializeToString(), encode_batch(s[4:])],
            id="plain-then-compressed",
        ),
    ],
)
def test_batches_stored_before_compression_are_still_read(stored: Any) -> None:
    spans = realistic_trace(8)
    assert decode_batches(stored(spans), max_spans=100) == (spans, False)


def test_a_corrupt_compressed_batch_is_skipped() -> None:
    spans = realistic_trace(9)
    good = encode_batch(spans)
    corrupt = good[:4] + b"\x00" * 8 + good[12:]
    assert decode_batches([corrupt, good[: len(good) // 2], good], max_spans=100) == (
        spans,
        False,
    )


def test_resource_and_scope_are_written_once_per_group() -> None:
    spans = [full_span(n) for n in range(1, 4)] + [full_span(9, resource={"service.name": "b"})]
    data = spans_to_otlp(spans)
    assert len(data.resource_spans) == 2
    assert [len(rs.scope_spans[0].spans) for rs in data.resource_spans] == [3, 1]


@pytest.mark.parametrize(
    ("span", "message"),
    [
        pytest.param(full_span(span_id=SpanId("zz")), "span id", id="span-id-not-hex"),
        pytest.param(full_span(trace_id=TraceId("abcd")), "trace id", id="trace-id-short"),
        pytest.param(full_span(attributes={"big": 2**64}), "int64", id="int-too-big"),
    ],
)
def test_unencodable_spans_are_permanent_errors(span: Span, message: str) -> None:
    with pytest.raises(PermanentError, match=message):
        encode_batch([span])


def test_foreign_kvlists_are_flattened_to_dotted_keys() -> None:
    nested = AnyValue(
        kvlist_value=KeyValueList(values=[KeyValue(key="b", value=AnyValue(int_value=1))])
    )
    assert attributes_from_otlp([KeyValue(key="a", value=nested)]) == {"a.b": 1}


def test_spans_with_malformed_ids_are_rejected_on_read() -> None:
    data = TracesData(resource_spans=[ResourceSpans()])
    data.resource_spans[0].scope_spans.add().spans.add(trace_id=b"\x01", span_id=b"\x02" * 8)
    with pytest.raises(PermanentError):
        spans_from_otlp(data.resource_spans)


@pytest.mark.parametrize(
    "record",
    [
        pytest.param(
            LogRecord(
                time_unix_nano=1,
                body="hello",
                tag="app",
                severity_number=Severity.WARN,
                severity_text="WARN",
                attributes={"k": [1, b"x"]},
                resource={"cluster": "c"},
                trace_id=TID,
                span_id=SpanId("00f067aa0ba902b7"),
                observed_time_unix_nano=2,
            ),
            id="every-field",
        ),
        pytest.param(LogRecord(time_unix_nano=0, body=""), id="defaults"),
        pytest.param(LogRecord(time_unix_nano=5, body="x", severity_number=11), id="odd-severity"),
    ],
)
def test_log_record_round_trips(record: LogRecord) -> None:
    assert logs_from_otlp(log_to_otlp(record)) == [record]


def test_index_entries_per_service_and_bucket() -> None:
    hour = 3600 * 10**9
    spans = [
        full_span(
            1, start_time_unix_nano=5 * hour + 10**9, attributes={"long": "x" * 100, "s": "v"}
        ),
        full_span(2, start_time_unix_nano=5 * hour + 2 * 10**6, name="other"),
        full_span(3, start_time_unix_nano=6 * hour, resource={"service.name": "b"}),
    ]
    entries = index_entries(spans, bucket_s=3600, max_value_len=64)
    assert entries.starts == {("svc", 5): {TID: 5 * 3_600_000 + 2}, ("b", 6): {TID: 6 * 3_600_000}}
    assert entries.operations[("svc", 5)] == {"GET /", "other"}
    assert entries.tags[("long", 5)] == set()
    assert entries.tags[("s", 5)] == {"v", "x"}
    assert entries.tags[("service.name", 6)] == {"b"}


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        pytest.param(TraceSettings(retention_s=0), "traces.retention_s", id="trace-retention"),
        pytest.param(
            TraceSettings(index_bucket_s=10, retention_s=5),
            "traces.index_bucket_s",
            id="bucket-over-retention",
        ),
        pytest.param(
            TraceSettings(search_default_limit=5, search_max_limit=2),
            "traces.search_default_limit",
            id="default-over-max",
        ),
        pytest.param(
            LogSettings(max_scanned_entries=-1), "logs.max_scanned_entries", id="log-scan"
        ),
        pytest.param(
            LogSettings(retention_s=60, registry_refresh_s=60),
            "logs.registry_refresh_s",
            id="refresh-over-retention",
        ),
    ],
)
def test_settings_validation_names_the_field(settings: Any, field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        settings.validate()


def test_default_settings_are_valid() -> None:
    TraceSettings().validate()
    LogSettings().validate()

"""The log entry codec and the grouping of records into entries (pure)."""

from __future__ import annotations

import dataclasses

import pytest

from collectors._core.errors import PermanentError
from collectors._core.log_batch import LogBatch
from collectors._core.model import LogRecord, Severity, SpanId, TraceId
from collectors.store.log_codec import (
    BATCH_FIELD,
    RowFilter,
    decode_entry,
    encode_stream,
    split_bounds,
)

T0 = 1_700_000_000_000_000_000


def encode_entry(tag: str, records: list[LogRecord]) -> bytes:
    """``records`` as one stream entry, through the store's encoder."""
    [entry] = encode_stream(tag, LogBatch.of(records).parts, len(records), 2**62)
    return entry.blob


def split_entries(
    items: list[LogRecord], size: int, span_ns: int
) -> list[tuple[int, list[LogRecord]]]:
    times = [record.time_unix_nano for record in items]
    return [(base, items[start:stop]) for start, stop, base in split_bounds(times, size, span_ns)]


ALL = RowFilter(0, 2**63)
TRACE = TraceId("4bf92f3577b34da6a3ce929d0e0e4736")


def rec(dt: int = 0, body: str = "x", **kw: object) -> LogRecord:
    return LogRecord(time_unix_nano=T0 + dt, body=body, tag="app", **kw)  # type: ignore[arg-type]


def roundtrip(records: list[LogRecord], flt: RowFilter = ALL) -> list[LogRecord]:
    n, out = decode_entry({BATCH_FIELD: encode_entry("app", records)}, flt)
    assert n == len(records)
    return [r for _, r in out]


@pytest.mark.parametrize(
    "record",
    [
        pytest.param(rec(), id="minimal"),
        pytest.param(
            rec(
                5,
                "héllo",
                severity_number=Severity.ERROR,
                severity_text="ERROR",
                attributes={"i": -(2**63), "f": 0.5, "b": b"\x00\xff", "t": True, "n": None},
                resource={"cluster": "east", "host": "h"},
                trace_id=TRACE,
                span_id=SpanId("00f067aa0ba902b7"),
                observed_time_unix_nano=T0 + 99,
            ),
            id="every-field",
        ),
        pytest.param(rec(attributes={"list": ["a", 1, [True]]}), id="nested-list"),
        pytest.param(rec(severity_number=11), id="severity-not-in-enum"),
    ],
)
def test_records_round_trip(record: LogRecord) -> None:
    (read,) = roundtrip([rec(-10), record])[1:]
    for f in dataclasses.fields(LogRecord):
        assert getattr(read, f.name) == getattr(record, f.name), f.name


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        pytest.param(RowFilter(T0 + 1, T0 + 2), ["b", "c"], id="time"),
        pytest.param(RowFilter(0, 2**63, min_severity=17), ["c"], id="severity"),
        pytest.param(RowFilter(0, 2**63, contains="needle"), ["b"], id="contains"),
        pytest.param(RowFilter(0, 2**63, trace_id=TRACE), ["a"], id="trace"),
        pytest.param(RowFilter(0, 2**63, trace_id=TraceId("zz")), [], id="bad-trace"),
    ],
)
def test_rows_are_filtered(flt: RowFilter, expected: list[str]) -> None:
    records = [
        rec(0, "a", trace_id=TRACE),
        rec(1, "b needle", severity_number=Severity.INFO),
        rec(2, "c", severity_number=Severity.ERROR),
    ]
    assert [r.body.split()[0] for r in roundtrip(records, flt)] == expected


@pytest.mark.parametrize(
    "record",
    [
        pytest.param(rec(trace_id=TraceId("abc")), id="short-trace-id"),
        pytest.param(rec(span_id=SpanId("not hex!")), id="bad-span-id"),
        pytest.param(rec(attributes={"big": 2**70}), id="int-beyond-64-bits"),
        pytest.param(rec(attributes={"obj": object()}), id="not-an-attribute-value"),
    ],
)
def test_unencodable_records_are_permanent_errors(record: LogRecord) -> None:
    with pytest.raises(PermanentError):
        encode_entry("app", [record])


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({}, id="empty"),
        pytest.param({BATCH_FIELD: b"\xc1"}, id="not-msgpack"),
        pytest.param({b"p": b"\xff\xff"}, id="bad-legacy"),
    ],
)
def test_undecodable_entries_are_empty(fields: dict[bytes, bytes]) -> None:
    assert decode_entry(fields, ALL)[1] == []


@pytest.mark.parametrize(
    ("offsets", "size", "span", "expected"),
    [
        pytest.param([0, 1, 2, 3, 4], 2, 100, [2, 2, 1], id="by-size"),
        pytest.param([0, 5, 11, 12, 30], 10, 10, [2, 2, 1], id="by-span"),
        pytest.param([10, 0, 20, 5], 10, 10, [2, 1, 1], id="unordered"),
        pytest.param([], 10, 10, [], id="none"),
    ],
)
def test_split_entries(offsets: list[int], size: int, span: int, expected: list[int]) -> None:
    groups = split_entries([rec(o) for o in offsets], size, span)
    assert [len(g) for _, g in groups] == expected
    for base, group in groups:
        times = [r.time_unix_nano for r in group]
        assert max(times) - min(times) <= span and base == min(times)

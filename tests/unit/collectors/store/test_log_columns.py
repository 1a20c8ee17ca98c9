"""Encoding a stream's columns into entries: the same groups and records as one at a time."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
ALL = RowFilter(0, 2**63)


def reference_groups(times: list[int], size: int, span: int) -> list[tuple[int, int, int]]:
    """Record by record, as the store grouped before it worked on columns."""
    groups: list[tuple[int, int, int]] = []
    start = 0
    lo = hi = 0
    for i, t in enumerate(times):
        if i > start and (
            i - start >= size or (t > hi and t - lo > span) or (t < lo and hi - t > span)
        ):
            groups.append((start, i, lo))
            start = i
        if i == start:
            lo = hi = t
        else:
            lo, hi = min(lo, t), max(hi, t)
    if times:
        groups.append((start, len(times), lo))
    return groups


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(0, 50), max_size=60),
    st.integers(1, 8),
    st.sampled_from([0, 5, 20, 100]),
)
def test_split_bounds_matches_grouping_record_by_record(
    times: list[int], size: int, span: int
) -> None:
    assert split_bounds(times, size, span) == reference_groups(times, size, span)


def rec(i: int, resource: Any, **kw: Any) -> LogRecord:
    fields: dict[str, Any] = {
        "time_unix_nano": T0 + i * 1_000,
        "body": f"line {i}",
        "tag": "app",
        "severity_number": Severity.INFO,
        "severity_text": "info",
        "attributes": {"i": i, "list": [i, "x"]},
        "resource": resource,
        "observed_time_unix_nano": T0 + 7 + i * 1_000,
    }
    return LogRecord(**{**fields, **kw})


def decoded(entries: list[Any]) -> list[LogRecord]:
    out: list[LogRecord] = []
    for entry in entries:
        n, matches = decode_entry({BATCH_FIELD: entry.blob}, ALL)
        assert n == len(matches)
        out += [record for _, record in matches]
    return out


def test_parts_of_a_stream_round_trip_with_their_resources_and_trace_links() -> None:
    east, west = {"cluster": "c", "zone": "east"}, {"cluster": "c", "zone": "west"}
    trace = TraceId("4bf92f3577b34da6a3ce929d0e0e4736")
    records = [
        rec(0, east),
        rec(1, east, trace_id=trace, span_id=SpanId("00f067aa0ba902b7")),
        rec(2, dict(east)),  # equal to the previous part's resource: encoded once
        rec(3, west),
        rec(4, west),
        rec(5, east),
    ]
    entries = encode_stream("app", LogBatch.of(records).parts, 2, 10**9)
    assert decoded(entries) == records
    assert [e.traced for e in entries] == [[(1, trace)], [], []]
    assert [e.base_unix_nano for e in entries] == [T0, T0 + 2_000, T0 + 4_000]


@pytest.mark.parametrize(
    ("records", "sizes"),
    [
        pytest.param([rec(i, {}) for i in range(5)], [5], id="one-entry"),
        pytest.param([rec(i, {}) for i in (0, 10**7, 1, 10**7 + 1)], [1, 1, 1, 1], id="by-span"),
        pytest.param([rec(i, {}) for i in (3, 1, 2)], [3], id="unordered-base-is-min"),
    ],
)
def test_entries_are_cut_by_size_and_span(records: list[LogRecord], sizes: list[int]) -> None:
    entries = encode_stream("app", LogBatch.of(records).parts, 500, 5 * 10**9)
    assert decoded(entries) == records
    cut = 0
    for entry, size in zip(entries, sizes, strict=True):
        assert entry.base_unix_nano == min(r.time_unix_nano for r in records[cut : cut + size])
        cut += size


@pytest.mark.parametrize(
    "record",
    [
        pytest.param(rec(0, {}, trace_id=TraceId("abc")), id="short-trace-id"),
        pytest.param(rec(0, {}, span_id=SpanId("not hex!")), id="bad-span-id"),
        pytest.param(rec(0, {}, attributes={"big": 2**70}), id="int-beyond-64-bits"),
    ],
)
def test_unencodable_records_are_permanent_errors(record: LogRecord) -> None:
    with pytest.raises(PermanentError):
        encode_stream("app", LogBatch.of([rec(1, {}), record]).parts, 500, 10**9)

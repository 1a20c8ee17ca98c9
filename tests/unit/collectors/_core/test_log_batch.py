"""Columnar log batches: the same records as the list they were built from, cut and joined."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors._core.log_batch import LogBatch, LogColumns
from collectors._core.model import LogRecord, Severity, SpanId, TraceId
from collectors.pipeline.normalize import add_to_log_batch

T0 = 1_700_000_000_000_000_000
SHARED: dict[str, Any] = {"host": "a"}


def rec(i: int, tag: str = "app", resource: Any = None, **kw: Any) -> LogRecord:
    return LogRecord(
        time_unix_nano=T0 + i,
        body=f"line {i}",
        tag=tag,
        attributes={"i": i},
        resource=SHARED if resource is None else resource,
        observed_time_unix_nano=T0 + 100 + i,
        **kw,
    )


def records_strategy() -> st.SearchStrategy[list[LogRecord]]:
    resources = st.sampled_from([SHARED, {"host": "a"}, {"host": "b"}, {}])
    one = st.builds(
        lambda i, tag, resource, traced: rec(
            i,
            tag,
            resource,
            severity_number=Severity.WARN if i % 2 else Severity.UNSPECIFIED,
            trace_id=TraceId(f"{i + 1:032x}") if traced else None,
            span_id=SpanId(f"{i + 1:016x}") if traced else None,
        ),
        st.integers(0, 10**6),
        st.sampled_from(["app", "db"]),
        resources,
        st.booleans(),
    )
    return st.lists(one, max_size=40)


@settings(max_examples=200, deadline=None)
@given(records_strategy(), st.integers(1, 7))
def test_a_batch_holds_the_records_it_was_built_from(records: list[LogRecord], size: int) -> None:
    batch = LogBatch.of(records)
    assert len(batch) == len(records)
    assert list(batch) == records
    assert [batch[i] for i in range(-len(records), len(records))] == records + records
    pieces = batch.split(size)
    assert all(0 < len(p) <= size for p in pieces) or (pieces == [batch] and not records)
    assert list(LogBatch.merge(pieces)) == records
    for part in batch.parts:  # a part never mixes tags or unequal resources
        assert len({r.tag for r in part_records(part)}) == 1
        assert all(r.resource == part.resource for r in part_records(part))


def part_records(part: LogColumns) -> list[LogRecord]:
    return [part.record(i) for i in range(len(part))]


@pytest.mark.parametrize(
    ("records", "parts"),
    [
        pytest.param([], 0, id="empty"),
        pytest.param([rec(0), rec(1), rec(2)], 1, id="one-resource-object"),
        pytest.param([rec(0, resource={"h": 1}), rec(1, resource={"h": 1})], 1, id="equal"),
        pytest.param([rec(0, resource={"h": 1}), rec(1, resource={"h": 2})], 2, id="unequal"),
        pytest.param([rec(0), rec(1, "db"), rec(2)], 3, id="tag-runs"),
    ],
)
def test_runs_of_tag_and_resource_become_parts(records: list[LogRecord], parts: int) -> None:
    assert len(LogBatch.of(records).parts) == parts


def test_a_batch_is_passed_through_and_out_of_range_indexes_fail() -> None:
    batch = LogBatch.of([rec(0)])
    assert LogBatch.of(batch) is batch
    assert batch.split(5) == [batch]
    assert list(batch[0:5]) == [rec(0)]
    with pytest.raises(IndexError):
        batch[1]
    with pytest.raises(IndexError):
        batch[-2]


def test_trace_columns_exist_only_when_a_record_has_an_id() -> None:
    plain = LogBatch.of([rec(0), rec(1)]).parts[0]
    assert plain.trace_ids is None and plain.span_ids is None
    traced = LogBatch.of([rec(0), rec(1, trace_id=TraceId("ab" * 16))]).parts[0]
    assert traced.trace_ids == [None, "ab" * 16]
    assert traced.span_ids is None


def test_select_keeps_the_flagged_rows() -> None:
    part = LogBatch.of([rec(0), rec(1, trace_id=TraceId("ab" * 16)), rec(2)]).parts[0]
    kept = part.select([False, True, True])
    assert part_records(kept) == [rec(1, trace_id=TraceId("ab" * 16)), rec(2)]


def test_resource_labels_are_merged_once_per_resource_object() -> None:
    shared: dict[str, Any] = {}
    own = {"cluster": "mine"}
    batch = LogBatch.merge(
        [
            LogBatch.of([rec(0, resource=shared), rec(1, resource=shared)]),
            LogBatch.of([rec(2, resource=shared)]),
            LogBatch.of([rec(3, resource=own)]),
        ]
    )
    out = add_to_log_batch(batch, {"cluster": "c1", "region": "r1"})
    first, second, third = out.parts
    assert first.resource == {"cluster": "c1", "region": "r1"}
    assert second.resource is first.resource  # still shared: the store encodes it once
    assert third.resource == {"cluster": "mine", "region": "r1"}
    assert shared == {}  # the sender's maps are not changed
    assert add_to_log_batch(batch, {}) is batch

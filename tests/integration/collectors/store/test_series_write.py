"""``write_series`` (columnar batches) against real Redis: same rules as ``write_samples``."""

from __future__ import annotations

import struct

from collectors._core.component import WriteResult
from collectors._core.model import Sample
from collectors._core.series_batch import SeriesBatch, SeriesLabels
from collectors.promql.source import LabelMatcher, MatchType
from collectors.store.chunks import STALE_NAN
from collectors.store.store import TelemetryStore

T0 = 1_700_000_000_000
STEP = 15_000


def columns(runs: list[tuple[SeriesLabels, list[tuple[int, float]]]]) -> SeriesBatch:
    series: list[SeriesLabels] = []
    offsets = [0]
    ts: list[int] = []
    vs: list[float] = []
    for ref, points in runs:
        series.append(ref)
        ts.extend(t for t, _ in points)
        vs.extend(v for _, v in points)
        offsets.append(len(ts))
    return SeriesBatch(series, offsets, ts, vs)


def bits(values: list[float]) -> list[int]:
    return [struct.unpack(">Q", struct.pack(">d", v))[0] for v in values]


async def test_runs_of_one_series_are_merged_sorted_and_read_back(store: TelemetryStore) -> None:
    a = SeriesLabels("up", {"job": "a"})
    b = SeriesLabels("up", {"job": "b"})
    a_again = SeriesLabels("up", {"job": "a"})  # equal labels, another object: one series
    batch = columns(
        [
            (a, [(T0 + STEP, 2.0)]),
            (b, [(T0 + 2 * STEP, 20.0), (T0, 10.0)]),  # unsorted run
            (a_again, [(T0, 1.0)]),
            (a, [(T0 + 2 * STEP, STALE_NAN)]),
        ]
    )
    result = await store.write_series(batch)
    assert (result.accepted, result.series_created, result.rejected) == (5, 2, 0)
    got = await store.metrics.select(
        [LabelMatcher("__name__", MatchType.EQUAL, "up")], T0, T0 + 3 * STEP
    )
    by_job = {s.labels["job"]: s for s in got}
    assert list(by_job["a"].timestamps_ms) == [T0, T0 + STEP, T0 + 2 * STEP]
    assert bits(list(by_job["a"].values)) == bits([1.0, 2.0, STALE_NAN])
    assert list(by_job["b"].values) == [10.0, 20.0]


async def test_order_rules_match_write_samples(store: TelemetryStore) -> None:
    ref = SeriesLabels("c", {"a": "b"})
    await store.write_series(columns([(ref, [(T0 + i * STEP, 1.0 + i) for i in range(5)])]))
    later = [
        (T0 + 4 * STEP, 5.0),  # same timestamp and value as the newest: no-op
        (T0 + 4 * STEP, 6.0),  # same timestamp, new value: refused
        (T0, 1.0),  # older: refused
        (T0 + 9 * STEP, 9.0),
        (T0 + 9 * STEP, 9.0),  # repeated in the batch: no-op
    ]
    result = await store.write_series(columns([(ref, [p]) for p in later]))
    assert (result.accepted, result.duplicates_ignored) == (1, 2)
    assert (result.duplicate_conflicts, result.out_of_order) == (1, 1)
    # the same batch as samples against a twin series gives the same counts
    twin = [Sample("c", {"a": "twin"}, T0 + i * STEP, 1.0 + i) for i in range(5)]
    await store.write_samples(twin)
    again = await store.write_samples([Sample("c", {"a": "twin"}, t, v) for t, v in later])
    assert again == result


async def test_an_empty_batch_stores_nothing(store: TelemetryStore) -> None:
    assert await store.write_series(SeriesBatch([], [0], [], [])) == WriteResult()

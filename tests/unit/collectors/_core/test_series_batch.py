"""SeriesBatch (columns, split, merge), the series normalizer and the pipeline's write_series."""

from __future__ import annotations

import asyncio

import pytest

from collectors._core.errors import PermanentError
from collectors._core.series_batch import (
    SeriesBatch,
    SeriesLabels,
    derived_per_series,
    merge_batches,
)
from collectors.pipeline.normalize import ResourceSettings, SeriesNormalizer
from collectors.pipeline.pipeline import BatchSettings, Pipeline, PipelineSettings
from tests.helpers.memsink import MemorySink, receiver_metrics

A = SeriesLabels("m", {"s": "a"})
B = SeriesLabels("m", {"s": "b"})


def batch(runs: list[tuple[SeriesLabels, list[int]]]) -> SeriesBatch:
    series: list[SeriesLabels] = []
    offsets = [0]
    ts: list[int] = []
    vs: list[float] = []
    for ref, stamps in runs:
        series.append(ref)
        ts.extend(stamps)
        vs.extend(float(t) for t in stamps)
        offsets.append(len(ts))
    return SeriesBatch(series, offsets, ts, vs)


def flat(b: SeriesBatch) -> list[tuple[str, int]]:
    return [(s.labels["s"], s.timestamp_ms) for s in b.to_samples()]


@pytest.mark.parametrize(
    "runs, size, pieces",
    [
        pytest.param([(A, [1, 2, 3])], 5, [3], id="fits"),
        pytest.param([(A, [1, 2, 3]), (B, [1, 2])], 2, [2, 2, 1], id="cuts-runs"),
        pytest.param([(A, [1]), (B, [1]), (A, [2])], 1, [1, 1, 1], id="one-per-piece"),
        pytest.param([(A, [1, 2]), (B, [5, 6, 7, 8])], 3, [3, 3], id="exact"),
    ],
)
def test_split_keeps_every_sample_in_order(
    runs: list[tuple[SeriesLabels, list[int]]], size: int, pieces: list[int]
) -> None:
    whole = batch(runs)
    parts = whole.split(size)
    assert [len(p) for p in parts] == pieces
    assert all(p.offsets[0] == 0 and p.offsets[-1] == len(p) for p in parts)
    assert flat(merge_batches(parts)) == flat(whole)


def test_merge_concatenates_runs() -> None:
    merged = merge_batches([batch([(A, [1, 2])]), batch([(B, [3])]), batch([(A, [4])])])
    assert flat(merged) == [("a", 1), ("a", 2), ("b", 3), ("a", 4)]
    assert merged.runs() == [(A, 0, 2), (B, 2, 3), (A, 3, 4)]


def test_normalizer_adds_labels_once_per_series_object() -> None:
    normalize = SeriesNormalizer(extra={"cluster": "c1"})
    own = SeriesLabels("m", {"cluster": "mine"})
    first = normalize(batch([(A, [1]), (own, [1]), (A, [2])]))
    second = normalize(batch([(A, [3])]))
    assert dict(first.series[0].labels) == {"s": "a", "cluster": "c1"}
    assert first.series[1] is own  # a sender's own cluster label wins
    assert first.series[0] is first.series[2] is second.series[0]
    assert dict(A.labels) == {"s": "a"}  # the receiver's object is not changed


@pytest.mark.parametrize(
    "ref",
    [
        pytest.param(SeriesLabels("", {"a": "b"}), id="no-name"),
        pytest.param(SeriesLabels("m", {"": "b"}), id="empty-label-name"),
        pytest.param(SeriesLabels("m", {"a\x00": "b"}), id="nul-in-label-name"),
    ],
)
def test_normalizer_refuses_invalid_series(ref: SeriesLabels) -> None:
    with pytest.raises(PermanentError):
        SeriesNormalizer(extra={})(batch([(ref, [1])]))


async def test_write_series_goes_through_the_pipeline_and_shares_writes() -> None:
    sink = MemorySink()
    sink.gate = asyncio.Event()
    settings = PipelineSettings(
        resource=ResourceSettings(cluster="c1"), batch=BatchSettings(workers=1, max_samples=4)
    )
    pipeline = Pipeline(store=sink, settings=settings, metrics=receiver_metrics("pipeline"))
    await pipeline.start()
    first = asyncio.create_task(pipeline.write_series(batch([(A, [1, 2, 3, 4, 5])])))
    await asyncio.sleep(0.01)
    second = asyncio.create_task(pipeline.write_series(batch([(B, [1, 2])])))
    await asyncio.sleep(0.01)
    sink.gate.set()
    results = await asyncio.gather(first, second)
    assert sink.batches == [4, 3]  # 5 samples cut at 4; the rest merged with the next caller
    assert [r.accepted for r in results] == [5, 2]
    assert all(s.labels["cluster"] == "c1" for s in sink.samples)
    await pipeline.shutdown()


def test_derived_per_series_derives_each_new_object_once() -> None:
    cache: dict[SeriesLabels, str] = {A: "known a"}
    derived: list[SeriesLabels] = []

    def derive(ref: SeriesLabels) -> str:
        derived.append(ref)
        cache[ref] = f"new {ref.labels['s']}"
        return cache[ref]

    assert derived_per_series(cache, [A, B, A, B], derive) == ["known a", "new b"] * 2
    assert derived == [B]
    assert derived_per_series(cache, [B, A], derive) == ["new b", "known a"]
    assert derived == [B]

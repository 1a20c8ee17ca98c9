from __future__ import annotations

import asyncio

import pytest

from collectors._core.component import WriteResult
from collectors._core.errors import (
    MemoryLimitError,
    PermanentError,
    QueueFullError,
    ShuttingDownError,
    StoreUnavailableError,
)
from collectors._core.model import LogRecord, Sample
from collectors.pipeline.memory import MemoryLimiter, MemorySettings
from collectors.pipeline.normalize import ResourceSettings
from collectors.pipeline.pipeline import (
    BatchSettings,
    Pipeline,
    PipelineSettings,
    split_write_result,
)
from tests.helpers.memsink import MemorySink, receiver_metrics


def samples(series: str, n: int, start: int = 0) -> list[Sample]:
    labels = {"series": series}
    return [Sample("m", labels, start + i, float(i)) for i in range(n)]


async def running(sink: MemorySink, **batch: int) -> Pipeline:
    settings = PipelineSettings(
        resource=ResourceSettings(cluster="c1"),
        batch=BatchSettings(**batch),  # type: ignore[arg-type]
    )
    pipeline = Pipeline(store=sink, settings=settings, metrics=receiver_metrics("pipeline"))
    await pipeline.start()
    return pipeline


async def test_concurrent_callers_share_one_store_write() -> None:
    sink = MemorySink()
    sink.gate = asyncio.Event()
    pipeline = await running(sink, workers=1)
    first = asyncio.create_task(pipeline.write_samples(samples("a", 3)))
    await asyncio.sleep(0.01)  # the worker took "a" and waits on the gate
    rest = [asyncio.create_task(pipeline.write_samples(samples(s, 2))) for s in "bcd"]
    await asyncio.sleep(0.01)
    sink.gate.set()
    results = await asyncio.gather(first, *rest)
    assert sink.batches == [3, 6]
    assert [r.accepted for r in results] == [3, 2, 2, 2]
    assert all(s.labels["cluster"] == "c1" for s in sink.samples)
    await pipeline.shutdown()


async def test_large_caller_batch_is_split_and_results_summed() -> None:
    sink = MemorySink()
    pipeline = await running(sink, max_samples=4, max_queued_samples=100)
    result = await pipeline.write_samples(samples("a", 10))
    assert result.accepted == 10
    assert max(sink.batches) <= 4
    await pipeline.shutdown()


async def test_store_failure_reaches_every_caller() -> None:
    sink = MemorySink()
    sink.available = False
    pipeline = await running(sink)
    with pytest.raises(StoreUnavailableError):
        await pipeline.write_samples(samples("a", 1))
    with pytest.raises(StoreUnavailableError):
        await pipeline.write_logs([LogRecord(1, "x")])
    await pipeline.shutdown()


async def test_full_queue_refuses_at_once() -> None:
    sink = MemorySink()
    sink.gate = asyncio.Event()
    pipeline = await running(sink, max_samples=2, max_queued_samples=4, workers=1)
    held = asyncio.create_task(pipeline.write_samples(samples("a", 2)))
    await asyncio.sleep(0.01)
    queued = asyncio.create_task(pipeline.write_samples(samples("b", 4)))
    await asyncio.sleep(0.01)
    with pytest.raises(QueueFullError):
        await pipeline.write_samples(samples("c", 1))
    sink.gate.set()
    await asyncio.gather(held, queued)
    await pipeline.shutdown()


async def test_bad_sample_fails_only_its_caller() -> None:
    sink = MemorySink()
    pipeline = await running(sink)
    with pytest.raises(PermanentError):
        await pipeline.write_samples([Sample("", {}, 1, 1.0)])
    assert (await pipeline.write_samples(samples("a", 1))).accepted == 1
    await pipeline.shutdown()


async def test_memory_limit_refuses_before_queueing() -> None:
    sink = MemorySink()
    limiter = MemoryLimiter(settings=MemorySettings(limit_mib=100), read_rss=lambda: 10**12)
    pipeline = Pipeline(
        store=sink,
        settings=PipelineSettings(),
        metrics=receiver_metrics("pipeline"),
        limiter=limiter,
    )
    await pipeline.start()
    with pytest.raises(MemoryLimitError):
        await pipeline.write_samples(samples("a", 1))
    assert sink.batches == []
    await pipeline.shutdown()


async def test_shutdown_drains_then_refuses() -> None:
    sink = MemorySink()
    sink.gate = asyncio.Event()
    pipeline = await running(sink, workers=1)
    writes = [asyncio.create_task(pipeline.write_samples(samples(s, 5))) for s in "abc"]
    await asyncio.sleep(0.01)
    stopping = asyncio.create_task(pipeline.shutdown())
    await asyncio.sleep(0.01)
    with pytest.raises(ShuttingDownError):
        await pipeline.write_samples(samples("z", 1))
    sink.gate.set()
    await stopping
    assert [r.accepted for r in await asyncio.gather(*writes)] == [5, 5, 5]
    assert len(sink.samples) == 15


@pytest.mark.parametrize(
    ("result", "sizes", "expected"),
    [
        pytest.param(
            WriteResult(accepted=10), [10], [WriteResult(accepted=10)], id="single-caller-exact"
        ),
        pytest.param(
            WriteResult(accepted=9, out_of_order=1),
            [5, 5],
            [WriteResult(accepted=5, out_of_order=1), WriteResult(accepted=4)],
            id="remainder-to-first-largest",
        ),
        pytest.param(
            WriteResult(accepted=6),
            [1, 2, 3],
            [WriteResult(accepted=1), WriteResult(accepted=2), WriteResult(accepted=3)],
            id="proportional",
        ),
    ],
)
def test_split_write_result(
    result: WriteResult, sizes: list[int], expected: list[WriteResult]
) -> None:
    shares = split_write_result(result, sizes)
    assert shares == expected
    total = WriteResult()
    for s in shares:
        total += s
    assert total == result

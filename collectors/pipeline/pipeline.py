"""The pipeline every receiver writes through: normalize -> memory check -> batch -> store.

``Pipeline`` is a :class:`collectors._core.component.TelemetrySink` in front of the real store
and a :class:`collectors._core.component.Component`. A call returns only after the store
acknowledged the records it carried (so receivers acknowledge their senders afterwards),
and raises ``RetryableError`` (store down, memory limit, queue full, shutting down) or
``PermanentError`` (bad records) otherwise. Concurrent callers' batches are merged into
one store write per signal (group commit, :mod:`collectors.pipeline.batcher`).

Samples arrive either as ``Sample`` records (``write_samples``) or as a columnar
``SeriesBatch`` (``write_series``, remote_write): the latter is normalized once per series
object and written through its own coalescer, so neither path pays for the other's shape.
Each of the two sample queues is bounded by ``max_queued_samples``. Log records travel as
a columnar ``LogBatch`` (:mod:`collectors._core.log_batch`; other sequences are converted
on entry), so resource labels are merged once per part, not once per record.

When batches of several callers were merged, a caller's ``WriteResult`` is its share of
the merged result, apportioned by sample count (largest remainder): totals stay exact,
the split between callers of one merged write is an estimate.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from collectors._core.component import SeriesSink, WriteResult
from collectors._core.errors import ConfigError
from collectors._core.log_batch import LogBatch
from collectors._core.model import LogRecord, MetricMetadata, Sample, Span
from collectors._core.selfmetrics import ReceiverMetrics
from collectors._core.series_batch import SeriesBatch, merge_batches
from collectors.pipeline.batcher import BatchCoalescer, Coalescer
from collectors.pipeline.memory import MemoryLimiter, MemorySettings
from collectors.pipeline.normalize import (
    ResourceSettings,
    SeriesNormalizer,
    add_to_log_batch,
    add_to_samples,
    add_to_spans,
    check_samples,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BatchSettings:
    """How records of concurrent callers are merged into store writes."""

    max_samples: int = 20_000
    """Samples per store write (keep <= store.limits.max_batch_samples)."""
    max_records: int = 2_000
    """Spans, log records or metadata entries per store write."""
    max_queued_samples: int = 500_000
    """Samples waiting for a write; more are refused (retryable) at once."""
    max_queued_records: int = 100_000
    """Spans/log records/metadata waiting for a write, per signal."""
    linger_s: float = 0.0
    """Wait this long for more records when a batch is not full (0: group commit only)."""
    workers: int = 4
    """Concurrent store writes per signal. 4 rather than 2: with ``appendfsync always`` a
    write waits for Redis's fsync, and more writes in flight share one fsync (remote_write
    from 4 senders: +18 % at 10,000 series per round, docs/benchmarks.md)."""
    shutdown_timeout_s: float = 20.0
    """Time allowed to drain queued records at shutdown."""

    def validate(self) -> None:
        for name in ("max_samples", "max_records", "max_queued_samples", "max_queued_records"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"pipeline.batch.{name} must be > 0")
        if self.max_queued_samples < self.max_samples:
            raise ConfigError("pipeline.batch.max_queued_samples must be >= max_samples")
        if self.max_queued_records < self.max_records:
            raise ConfigError("pipeline.batch.max_queued_records must be >= max_records")
        if not 0 <= self.linger_s <= 1:
            raise ConfigError("pipeline.batch.linger_s must be within 0..1 seconds")
        if not 1 <= self.workers <= 64:
            raise ConfigError("pipeline.batch.workers must be within 1..64")
        if self.shutdown_timeout_s <= 0:
            raise ConfigError("pipeline.batch.shutdown_timeout_s must be > 0")


@dataclass(frozen=True, slots=True)
class PipelineSettings:
    """Everything the pipeline needs."""

    resource: ResourceSettings = field(default_factory=ResourceSettings)
    """Labels added to every record (cluster, region, static labels)."""
    batch: BatchSettings = field(default_factory=BatchSettings)
    """Merging and queue bounds."""
    memory: MemorySettings = field(default_factory=MemorySettings)
    """Memory limiter."""

    def validate(self) -> None:
        self.resource.validate()
        self.batch.validate()
        self.memory.validate()


def split_write_result(result: WriteResult, sizes: list[int]) -> list[WriteResult]:
    """Apportion every count of ``result`` over callers by their sample counts."""
    if len(sizes) == 1:
        return [result]
    columns = [_apportion(getattr(result, f.name), sizes) for f in fields(WriteResult)]
    return [WriteResult(*row) for row in zip(*columns, strict=True)]


def _apportion(total: int, sizes: list[int]) -> list[int]:
    whole = sum(sizes) or 1
    exact = [total * s / whole for s in sizes]
    out = [int(x) for x in exact]
    order = sorted(range(len(sizes)), key=lambda i: exact[i] - out[i], reverse=True)
    for i in order[: total - sum(out)]:
        out[i] += 1
    return out


def _sum_results(results: list[WriteResult]) -> WriteResult:
    total = WriteResult()
    for r in results:
        total += r
    return total


def _none_split(result: None, sizes: list[int]) -> list[None]:
    return [None] * len(sizes)


def _none_combine(results: list[None]) -> None:
    return None


class Pipeline:
    """Normalizes, limits and batches records on their way to ``store``."""

    def __init__(
        self,
        *,
        store: SeriesSink,
        settings: PipelineSettings,
        metrics: ReceiverMetrics,
        limiter: MemoryLimiter | None = None,
    ) -> None:
        settings.validate()
        self._settings = settings
        self._extra = settings.resource.labels()
        self.limiter = limiter or MemoryLimiter(settings=settings.memory)
        """Shared with receivers: they reserve request bytes before allocating them."""
        self._metrics = metrics
        b = settings.batch
        common = {"linger_s": b.linger_s, "workers": b.workers, "metrics": metrics}
        self._samples = Coalescer[Sample, WriteResult](
            signal="samples",
            write=store.write_samples,
            split=split_write_result,
            combine=_sum_results,
            max_items=b.max_samples,
            max_queued_items=b.max_queued_samples,
            **common,  # type: ignore[arg-type]
        )
        self._series = BatchCoalescer[SeriesBatch, WriteResult](
            signal="samples",
            write=store.write_series,
            split=split_write_result,
            combine=_sum_results,
            cut=SeriesBatch.split,
            join=merge_batches,
            max_items=b.max_samples,
            max_queued_items=b.max_queued_samples,
            **common,  # type: ignore[arg-type]
        )
        self._normalize_series = SeriesNormalizer(extra=self._extra)
        self._metadata = self._records(settings, "metadata", store.write_metadata)
        self._spans = self._records(settings, "spans", store.write_spans)
        self._logs = BatchCoalescer[LogBatch, None](  # columnar: see LogBatch
            signal="logs",
            write=store.write_logs,
            split=_none_split,
            combine=_none_combine,
            cut=LogBatch.split,
            join=LogBatch.merge,
            max_items=b.max_records,
            max_queued_items=b.max_queued_records,
            **common,  # type: ignore[arg-type]
        )
        self._all: tuple[BatchCoalescer[Any, Any], ...] = (
            self._samples,
            self._series,
            self._metadata,
            self._spans,
            self._logs,
        )

    def _records(
        self,
        settings: PipelineSettings,
        signal: str,
        write: Callable[[Sequence[Any]], Awaitable[None]],
    ) -> Coalescer[Any, None]:
        """A coalescer for a signal whose store write returns nothing (metadata, spans, logs)."""
        b = settings.batch
        return Coalescer[Any, None](
            signal=signal,
            write=write,
            split=_none_split,
            combine=_none_combine,
            max_items=b.max_records,
            max_queued_items=b.max_queued_records,
            linger_s=b.linger_s,
            workers=b.workers,
            metrics=self._metrics,
        )

    async def start(self) -> None:
        for c in self._all:
            c.start()

    async def shutdown(self) -> None:
        """Refuse new records and drain queued ones into the store; idempotent."""
        for c in self._all:
            await c.shutdown(timeout_s=self._settings.batch.shutdown_timeout_s)

    def _admit(self, n: int) -> None:
        try:
            self.limiter.check()
        except Exception:
            self._metrics.rejected("memory_limit", n)
            raise

    async def write_samples(self, samples: Sequence[Sample]) -> WriteResult:
        check_samples(samples)
        self._admit(len(samples))
        return await self._samples.submit(add_to_samples(samples, self._extra))

    async def write_series(self, batch: SeriesBatch) -> WriteResult:
        normalized = self._normalize_series(batch)
        self._admit(len(batch))
        return await self._series.submit(normalized)

    async def write_metadata(self, metadata: Sequence[MetricMetadata]) -> None:
        self._admit(len(metadata))
        await self._metadata.submit(list(metadata))

    async def write_spans(self, spans: Sequence[Span]) -> None:
        self._admit(len(spans))
        await self._spans.submit(add_to_spans(spans, self._extra))

    async def write_logs(self, records: Sequence[LogRecord]) -> None:
        self._admit(len(records))
        await self._logs.submit(add_to_log_batch(LogBatch.of(records), self._extra))

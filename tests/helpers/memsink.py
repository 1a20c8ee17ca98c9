"""An in-memory TelemetrySink: a real, small implementation of the protocol for tests.

Samples follow the store's rule (per series, older than the newest stored = out of order,
same timestamp = duplicate); ``available`` switches it to raising ``StoreUnavailableError``;
``gate`` (when set) holds every write until it is opened, so tests can make callers queue.
``receiver_metrics`` gives a pipeline or receiver under test its metrics on a registry of
their own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from prometheus_client import CollectorRegistry

from collectors._core.component import WriteResult
from collectors._core.errors import StoreUnavailableError
from collectors._core.model import LogRecord, MetricMetadata, Sample, Span
from collectors._core.selfmetrics import ReceiverMetricFamilies, ReceiverMetrics
from collectors._core.series_batch import SeriesBatch


class MemorySink:
    def __init__(self) -> None:
        self.samples: list[Sample] = []
        self.metadata: list[MetricMetadata] = []
        self.spans: list[Span] = []
        self.logs: list[LogRecord] = []
        self.batches: list[int] = []
        self.available = True
        self.gate: asyncio.Event | None = None
        self._newest: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}

    async def _enter(self) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if not self.available:
            raise StoreUnavailableError("memory sink is down")

    async def write_samples(self, samples: Sequence[Sample]) -> WriteResult:
        await self._enter()
        self.batches.append(len(samples))
        accepted = ooo = dup = 0
        for s in sorted(samples, key=lambda s: s.timestamp_ms):
            key = (s.name, tuple(sorted(s.labels.items())))
            newest = self._newest.get(key)
            if newest is not None and s.timestamp_ms < newest:
                ooo += 1
            elif newest is not None and s.timestamp_ms == newest:
                dup += 1
            else:
                self._newest[key] = s.timestamp_ms
                self.samples.append(s)
                accepted += 1
        return WriteResult(accepted=accepted, out_of_order=ooo, duplicates_ignored=dup)

    async def write_series(self, batch: SeriesBatch) -> WriteResult:
        return await self.write_samples(batch.to_samples())

    async def write_metadata(self, metadata: Sequence[MetricMetadata]) -> None:
        await self._enter()
        self.metadata.extend(metadata)

    async def write_spans(self, spans: Sequence[Span]) -> None:
        await self._enter()
        self.spans.extend(spans)

    async def write_logs(self, records: Sequence[LogRecord]) -> None:
        await self._enter()
        self.logs.extend(records)


def receiver_metrics(receiver: str) -> ReceiverMetrics:
    """Self-metrics labelled ``receiver``, on a fresh registry (tests never share one)."""
    return ReceiverMetrics(
        families=ReceiverMetricFamilies.create(CollectorRegistry()), receiver=receiver
    )

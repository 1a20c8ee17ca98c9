"""TelemetryStore: the one object receivers and query APIs hold to reach Redis.

It owns the connection (an external URL or the embedded server), and the three stores that
share it: ``metrics`` (a ``PagedSeriesSource``), ``traces`` and ``logs``; it is the
``QueryStore`` the query API is built over. Writes return only after Redis acknowledged
them, so a receiver acknowledges upstream after a durable write; a Redis outage surfaces as
``StoreUnavailableError`` (retryable).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from collectors._core.component import WriteResult
from collectors._core.errors import StoreUnavailableError
from collectors._core.model import LogRecord, MetricMetadata, Sample, Span
from collectors._core.series_batch import SeriesBatch
from collectors.store.config import StoreSettings
from collectors.store.connection import RedisConnection
from collectors.store.logs import LogStore
from collectors.store.metrics import MetricsStore
from collectors.store.metrics_compact import CompactionReport
from collectors.store.traces import TraceStore

log = logging.getLogger(__name__)


class TelemetryStore:
    """Facade over metrics, traces and logs; ``start()``/``shutdown()`` are idempotent."""

    def __init__(self, *, settings: StoreSettings) -> None:
        settings.validate()
        self._settings = settings
        self.connection = RedisConnection(settings=settings.redis)
        """The Redis connection (``connection.embedded.pid`` in embedded mode)."""
        self._metrics: MetricsStore | None = None
        self._traces: TraceStore | None = None
        self._logs: LogStore | None = None

    @property
    def settings(self) -> StoreSettings:
        return self._settings

    async def start(self) -> None:
        """Connect (starting the embedded Redis if there is no URL); idempotent."""
        if self._metrics is not None:
            return
        await self.connection.start()
        client = self.connection.client
        self._metrics = MetricsStore(redis=client, settings=self._settings)
        self._traces = TraceStore(redis=client, settings=self._settings.traces)
        self._logs = LogStore(redis=client, settings=self._settings.logs)
        log.info(
            "telemetry store started (%s)",
            "embedded Redis" if self._settings.redis.url is None else "external Redis",
        )

    async def shutdown(self) -> None:
        """Close the connection and stop the embedded Redis; idempotent."""
        self._metrics = self._traces = self._logs = None
        await self.connection.shutdown()

    @property
    def metrics(self) -> MetricsStore:
        if self._metrics is None:
            raise StoreUnavailableError("the telemetry store is not started")
        return self._metrics

    @property
    def traces(self) -> TraceStore:
        if self._traces is None:
            raise StoreUnavailableError("the telemetry store is not started")
        return self._traces

    @property
    def logs(self) -> LogStore:
        if self._logs is None:
            raise StoreUnavailableError("the telemetry store is not started")
        return self._logs

    async def write_samples(self, samples: Sequence[Sample]) -> WriteResult:
        return await self.metrics.write_samples(samples)

    async def write_series(self, batch: SeriesBatch) -> WriteResult:
        return await self.metrics.write_series(batch)

    async def write_metadata(self, metadata: Sequence[MetricMetadata]) -> None:
        await self.metrics.write_metadata(metadata)

    async def write_spans(self, spans: Sequence[Span]) -> None:
        await self.traces.write_spans(spans)

    async def write_logs(self, records: Sequence[LogRecord]) -> None:
        await self.logs.write_logs(records)

    async def compact(self, now_ms: int) -> CompactionReport:
        """One metrics maintenance pass; a background task calls it periodically."""
        return await self.metrics.compact(now_ms)

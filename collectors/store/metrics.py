"""MetricsStore: the Redis-backed metrics half of the telemetry store.

It implements ``SeriesSource`` (what the PromQL engine reads) and the write API of the
collectors, and adds the reads of the Prometheus HTTP API (series, label pages, metadata).
The work is split by responsibility: ``metrics_write`` (batches in), ``metrics_read``
(index and chunks out), ``metrics_compact`` (tiers and retention); the layout is in
``keys`` and docs/adr/0002-store-metrics-layout.md.

Out-of-order and duplicate samples follow Prometheus: per series, a sample older than the
newest stored one is refused (``out_of_order``); one at the same timestamp with the same
value bits is a no-op (``duplicates_ignored``), with another value it is refused
(``duplicate_conflicts``). Refusals are counted in the ``WriteResult``, never raised.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from collectors._core.component import WriteResult
from collectors._core.errors import LimitExceededError
from collectors._core.model import MetricMetadata, MetricType, Sample
from collectors._core.series_batch import SeriesBatch
from collectors.promql.source import LabelMatcher, Page, SeriesData
from collectors.store import keys
from collectors.store.cardinality import CardinalityReader, TsdbStatus
from collectors.store.config import StoreSettings
from collectors.store.connection import RedisClient, unavailable_on_redis_errors
from collectors.store.metrics_compact import CompactionReport, Compactor
from collectors.store.metrics_read import SeriesReader
from collectors.store.metrics_write import SampleWriter

_METADATA_SCAN_COUNT = 500


class MetricsStore:
    """Samples and metadata in Redis; a ``SeriesSource`` for the PromQL engine."""

    def __init__(self, *, redis: RedisClient, settings: StoreSettings) -> None:
        self._redis: Any = redis  # the redis stubs miss RedisCluster commands
        self._settings = settings
        self._writer = SampleWriter(
            redis=redis,
            chunks=settings.chunks,
            limits=settings.limits,
            use_module=settings.redis.write_module,
        )
        self._reader = SeriesReader(
            redis=redis, chunks=settings.chunks, tiers=settings.tiers, limits=settings.limits
        )
        self._cardinality = CardinalityReader(
            redis=redis, shards=settings.chunks.shards, limits=settings.limits
        )
        self._compactor = Compactor(
            redis=redis,
            reader=self._reader,
            writer=self._writer,
            chunks=settings.chunks,
            tiers=settings.tiers,
            limits=settings.limits,
        )

    # --- writes -------------------------------------------------------------------------

    async def write_samples(self, samples: Sequence[Sample]) -> WriteResult:
        """Append a batch; returns once Redis acknowledged it (``StoreUnavailableError`` if
        Redis is down, ``PermanentError`` for malformed samples, ``LimitExceededError`` for
        an oversized batch)."""
        return await self._writer.write(samples)

    async def write_series(self, batch: SeriesBatch) -> WriteResult:
        """Append a columnar batch (same contract as ``write_samples``)."""
        return await self._writer.write_series(batch)

    async def write_metadata(self, metadata: Sequence[MetricMetadata]) -> None:
        """Record type/help/unit per metric family name (the latest write wins)."""
        if not metadata:
            return
        mapping = {
            m.name: json.dumps({"type": m.type.value, "help": m.help, "unit": m.unit})
            for m in metadata
        }
        with unavailable_on_redis_errors("write_metadata"):
            await self._redis.hset(keys.metadata_key(), mapping=mapping)

    async def compact(self, now_ms: int) -> CompactionReport:
        """One maintenance pass (idle head cuts, downsampling, retention)."""
        return await self._compactor.run(now_ms)

    async def tsdb_status(self, *, top: int = 10, label_pairs: bool = True) -> TsdbStatus:
        """Series per metric name, label pair and tenant, the caps and the refusals over
        them (``collectors.store.cardinality``); ``StoreUnavailableError`` if Redis is down."""
        return await self._cardinality.status(top=top, label_pairs=label_pairs)

    # --- SeriesSource -------------------------------------------------------------------

    async def select(
        self, matchers: Sequence[LabelMatcher], start_ms: int, end_ms: int
    ) -> list[SeriesData]:
        """Series matching all ``matchers`` with their samples in ``[start_ms, end_ms]``.

        Raises ``PermanentError`` for a selector whose every matcher matches the empty
        string, ``LimitExceededError`` beyond ``limits.max_series_per_query`` series or
        ``limits.max_points_per_query`` samples.
        """
        return await self._reader.select(matchers, start_ms, end_ms)

    async def label_names(
        self, matchers: Sequence[Sequence[LabelMatcher]], start_ms: int, end_ms: int
    ) -> list[str]:
        page = await self.label_names_page(matchers, start_ms, end_ms)
        return _complete(page, "label names")

    async def label_values(
        self, name: str, matchers: Sequence[Sequence[LabelMatcher]], start_ms: int, end_ms: int
    ) -> list[str]:
        page = await self.label_values_page(name, matchers, start_ms, end_ms)
        return _complete(page, f"values of label {name!r}")

    # --- bounded reads for the HTTP API -------------------------------------------------

    async def series(
        self,
        matchers: Sequence[Sequence[LabelMatcher]],
        start_ms: int,
        end_ms: int,
        limit: int | None = None,
    ) -> Page[dict[str, str]]:
        """``/api/v1/series``: label sets with samples in the window, sorted; ``truncated``
        when more than ``limit`` (or ``limits.max_series_per_query``) matched."""
        return await self._reader.series(matchers, start_ms, end_ms, limit)

    async def label_names_page(
        self,
        matchers: Sequence[Sequence[LabelMatcher]],
        start_ms: int,
        end_ms: int,
        limit: int | None = None,
    ) -> Page[str]:
        """``/api/v1/labels``. Without matchers every stored name (the window is ignored)."""
        bound = self._bound(limit, self._settings.limits.max_label_values)
        return await self._reader.label_names(matchers, start_ms, end_ms, bound)

    async def label_values_page(
        self,
        name: str,
        matchers: Sequence[Sequence[LabelMatcher]],
        start_ms: int,
        end_ms: int,
        limit: int | None = None,
    ) -> Page[str]:
        """``/api/v1/label/<name>/values``. Without matchers every stored value."""
        bound = self._bound(limit, self._settings.limits.max_label_values)
        return await self._reader.label_values(name, matchers, start_ms, end_ms, bound)

    async def metadata(
        self, metric: str | None = None, limit: int | None = None
    ) -> Page[MetricMetadata]:
        """``/api/v1/metadata``: one entry per family name, sorted; ``truncated`` beyond
        ``limit`` (or ``limits.max_metadata``)."""
        bound = self._bound(limit, self._settings.limits.max_metadata)
        with unavailable_on_redis_errors("read metadata"):
            if metric is not None:
                raw = await self._redis.hget(keys.metadata_key(), metric)
                entries = {metric.encode(): raw} if raw is not None else {}
            else:
                entries = {}
                async for name, value in self._redis.hscan_iter(
                    keys.metadata_key(), count=_METADATA_SCAN_COUNT
                ):
                    entries[name] = value
                    if len(entries) > bound:
                        break
        items = sorted((_metadata(n, v) for n, v in entries.items()), key=lambda m: m.name)
        return Page(items[:bound], len(items) > bound)

    @staticmethod
    def _bound(limit: int | None, hard: int) -> int:
        return hard if limit is None or limit <= 0 else min(limit, hard)


def _complete(page: Page[str], what: str) -> list[str]:
    if page.truncated:
        raise LimitExceededError(
            f"more {what} than limits.max_label_values; add matchers to narrow the request"
        )
    return page.items


def _metadata(name: bytes | str, value: bytes | str) -> MetricMetadata:
    fields = json.loads(value)
    try:
        kind = MetricType(fields.get("type", "unknown"))
    except ValueError:
        kind = MetricType.UNKNOWN
    text = name.decode() if isinstance(name, bytes) else name
    return MetricMetadata(text, kind, fields.get("help", ""), fields.get("unit", ""))

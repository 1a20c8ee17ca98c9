"""The store's cardinality on ``/metrics``: series per tenant, the caps, refusals by reason.

These are the store's figures (shared by every collector writing into one Redis), not this
process's, so they are read from Redis rather than counted here: ``refresh`` runs before a
scrape is answered, at most once per ``min_interval_s`` (a burst of scrapes costs one read),
and only the cheap part of ``collectors.store.cardinality`` (no label pairs: one pipelined
round trip per shard). When Redis does not answer, the last figures are served and
``meshfed_store_cardinality_stale`` says so, instead of failing the whole scrape.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterator

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from collectors._core.errors import CollectorError
from collectors.store.cardinality import TsdbStatus

log = logging.getLogger(__name__)

StatusReader = Callable[[], Awaitable[TsdbStatus]]


class StoreCardinalityMetrics(Collector):
    """A prometheus_client collector over the last ``TsdbStatus`` read."""

    def __init__(self, *, read: StatusReader, min_interval_s: float = 5.0) -> None:
        self._read = read
        self._min_interval_s = min_interval_s
        self._status: TsdbStatus | None = None
        self._read_at = 0.0
        self._stale = False

    async def refresh(self) -> None:
        """Read the store's figures unless read less than ``min_interval_s`` ago."""
        now = time.monotonic()
        if self._status is not None and now - self._read_at < self._min_interval_s:
            return
        try:
            self._status = await self._read()
        except CollectorError as e:
            if not self._stale:
                log.warning("cannot read the store's cardinality (serving the last): %s", e)
            self._stale = True
            return
        self._read_at = now
        self._stale = False

    def collect(self) -> Iterator[Metric]:
        status = self._status
        stale = GaugeMetricFamily(
            "meshfed_store_cardinality_stale",
            "1 when the last read of the store's cardinality failed (older figures shown).",
        )
        stale.add_metric([], 1.0 if self._stale or status is None else 0.0)
        yield stale
        if status is None:
            return
        total = GaugeMetricFamily(
            "meshfed_store_series", "Series in the store (every collector's, all tenants)."
        )
        total.add_metric([], status.num_series)
        yield total
        tenants = GaugeMetricFamily(
            "meshfed_store_tenant_series",
            "Series in the store per tenant (the value of limits.tenant_label).",
            labels=["tenant"],
        )
        for tenant, n in sorted(status.series_by_tenant.items()):
            tenants.add_metric([tenant], n)
        yield tenants
        caps = GaugeMetricFamily(
            "meshfed_store_series_limit",
            "Configured series caps (max_series_total, max_series_per_tenant).",
            labels=["limit"],
        )
        caps.add_metric(["max_series_total"], status.max_series_total)
        caps.add_metric(["max_series_per_tenant"], status.max_series_per_tenant)
        yield caps
        series = CounterMetricFamily(
            "meshfed_store_series_refused",
            "New series refused by a series cap, by tenant and reason (the cap).",
            labels=["tenant", "reason"],
        )
        samples = CounterMetricFamily(
            "meshfed_store_samples_refused",
            "Samples of refused new series, by tenant and reason (the cap).",
            labels=["tenant", "reason"],
        )
        for r in status.refusals:
            series.add_metric([r.tenant, r.reason], r.series)
            samples.add_metric([r.tenant, r.reason], r.samples)
        yield series
        yield samples

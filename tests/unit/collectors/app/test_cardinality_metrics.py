"""``/metrics``' store cardinality: read at most once per interval, stale when Redis fails."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from collectors._core.errors import StoreUnavailableError
from collectors.app.cardinality_metrics import StoreCardinalityMetrics
from collectors.store.cardinality import ShardCounts, TsdbStatus, summarize
from collectors.store.config import LimitSettings

LIMITS = LimitSettings(max_series_total=100, max_series_per_tenant=30)


class Reader:
    """Stands in for the store's read (its Redis part is covered by the integration test)."""

    def __init__(self) -> None:
        self.calls = 0
        self.fail = False

    async def __call__(self) -> TsdbStatus:
        self.calls += 1
        if self.fail:
            raise StoreUnavailableError("redis down")
        shard = ShardCounts(
            series=self.calls,
            tenants={"a": self.calls},
            stats={"refused_series|max_series_total|a": 2, "refused_samples|max_series_total|a": 5},
        )
        return summarize([shard], limits=LIMITS)


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


async def test_figures_are_read_once_per_interval() -> None:
    reader = Reader()
    metrics = StoreCardinalityMetrics(read=reader, min_interval_s=3600)
    registry = CollectorRegistry()
    registry.register(metrics)
    assert _value(registry, "meshfed_store_cardinality_stale") == 1  # nothing read yet
    await metrics.refresh()
    await metrics.refresh()
    assert reader.calls == 1
    assert _value(registry, "meshfed_store_series") == 1
    assert _value(registry, "meshfed_store_tenant_series", tenant="a") == 1
    assert _value(registry, "meshfed_store_series_limit", limit="max_series_per_tenant") == 30
    refused = {"tenant": "a", "reason": "max_series_total"}
    assert _value(registry, "meshfed_store_series_refused_total", **refused) == 2
    assert _value(registry, "meshfed_store_samples_refused_total", **refused) == 5


async def test_a_failed_read_keeps_the_last_figures_and_says_stale() -> None:
    reader = Reader()
    metrics = StoreCardinalityMetrics(read=reader, min_interval_s=0)
    registry = CollectorRegistry()
    registry.register(metrics)
    await metrics.refresh()
    reader.fail = True
    await metrics.refresh()
    assert _value(registry, "meshfed_store_cardinality_stale") == 1
    assert _value(registry, "meshfed_store_series") == 1
    reader.fail = False
    await metrics.refresh()
    assert _value(registry, "meshfed_store_cardinality_stale") == 0
    assert _value(registry, "meshfed_store_series") == 3

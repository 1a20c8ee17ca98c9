"""Cardinality you can see: series per tenant and metric name, the caps, what was refused.

The write path already keeps what this needs, per shard (``collectors.store.keys``): the set
of every series, a HASH tenant -> series count, the postings (one SET of series per label
pair, whose size is the pair's series count) and a stats HASH where the write script counts
refused new series per reason and tenant. ``CardinalityReader`` reads those with one
pipelined round trip per step and no scan of series; ``summarize`` (pure) folds the shards
into one ``TsdbStatus``, shaped like Prometheus's ``/api/v1/status/tsdb`` (``headStats``,
``seriesCountByMetricName``, ``seriesCountByLabelValuePair``,
``labelValueCountByLabelName``) plus what Prometheus lacks: series per tenant, the
configured caps and the refusals by reason.

Why the caps are reported per shard too: the write script enforces each cap per shard
(``ceil(cap / shards)``), so a tenant whose series hash unevenly can be refused a little
before the configured total; the per-shard figure is what actually refused.
"""

from __future__ import annotations

import heapq
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from collectors.store import keys
from collectors.store.config import LimitSettings
from collectors.store.connection import RedisClient, unavailable_on_redis_errors

NAME_LABEL = "__name__"
REFUSAL_REASONS = ("max_series_total", "max_series_per_tenant")
"""The caps a new series can be refused by, as the write script names them."""


@dataclass(frozen=True, slots=True)
class ShardCounts:
    """What one shard holds, as read from Redis (before summing over shards)."""

    series: int = 0
    tenants: Mapping[str, int] = field(default_factory=dict)
    stats: Mapping[str, int] = field(default_factory=dict)
    """The stats HASH: ``series_refused``, ``refused_series|<reason>|<tenant>``, ..."""
    pairs: Mapping[tuple[str, str], int] = field(default_factory=dict)
    """Series per (label name, value) pair, ``__name__`` included."""
    truncated: bool = False
    """More label pairs than the read bound: ``pairs`` holds only part of them."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """New series (and their samples) one cap refused for one tenant, since the store began."""

    tenant: str
    reason: str
    series: int
    samples: int


@dataclass(frozen=True, slots=True)
class TsdbStatus:
    """The whole store's cardinality, shards folded together."""

    num_series: int
    num_label_pairs: int
    series_by_metric: list[tuple[str, int]]
    series_by_pair: list[tuple[str, int]]
    values_by_label: list[tuple[str, int]]
    series_by_tenant: dict[str, int]
    tenant_label: str
    max_series_total: int
    max_series_per_tenant: int
    shards: int
    refusals: list[Refusal]
    truncated: bool

    def to_json(self) -> str:
        """Prometheus's ``data`` object, plus ``meshfed`` (tenants, caps, refusals)."""

        def top(items: list[tuple[str, int]]) -> list[dict[str, object]]:
            return [{"name": n, "value": v} for n, v in items]

        return json.dumps(
            {
                "headStats": {
                    "numSeries": self.num_series,
                    "numLabelPairs": self.num_label_pairs,
                },
                "seriesCountByMetricName": top(self.series_by_metric),
                "seriesCountByLabelValuePair": top(self.series_by_pair),
                "labelValueCountByLabelName": top(self.values_by_label),
                "meshfed": {
                    "tenantLabel": self.tenant_label,
                    "seriesCountByTenant": top(
                        sorted(self.series_by_tenant.items(), key=_by_count)
                    ),
                    "limits": {
                        "maxSeriesTotal": self.max_series_total,
                        "maxSeriesPerTenant": self.max_series_per_tenant,
                        "shards": self.shards,
                        "maxSeriesTotalPerShard": math.ceil(self.max_series_total / self.shards),
                        "maxSeriesPerTenantPerShard": math.ceil(
                            self.max_series_per_tenant / self.shards
                        ),
                    },
                    "refused": [
                        {
                            "tenant": r.tenant,
                            "reason": r.reason,
                            "series": r.series,
                            "samples": r.samples,
                        }
                        for r in self.refusals
                    ],
                    "truncated": self.truncated,
                },
            },
            separators=(",", ":"),
        )


def _by_count(item: tuple[str, int]) -> tuple[int, str]:
    return (-item[1], item[0])


def parse_refusals(stats: Mapping[str, int]) -> list[Refusal]:
    """``refused_series|<reason>|<tenant>`` / ``refused_samples|...`` fields -> refusals,
    sorted by tenant then reason (a tenant may contain ``|``: only the first two split)."""
    found: dict[tuple[str, str], list[int]] = {}
    for key, count in stats.items():
        kind, _, rest = key.partition("|")
        if kind not in ("refused_series", "refused_samples") or "|" not in rest:
            continue
        reason, _, tenant = rest.partition("|")
        slot = found.setdefault((tenant, reason), [0, 0])
        slot[0 if kind == "refused_series" else 1] += count
    return [Refusal(t, r, s, n) for (t, r), (s, n) in sorted(found.items())]


def summarize(shards: Sequence[ShardCounts], *, limits: LimitSettings, top: int = 10) -> TsdbStatus:
    """Fold per-shard counts into one status; lists keep the ``top`` largest (name order
    breaks ties, as the figures would otherwise shuffle between calls)."""
    tenants: dict[str, int] = {}
    stats: dict[str, int] = {}
    pairs: dict[tuple[str, str], int] = {}
    for shard in shards:
        for tenant, n in shard.tenants.items():
            if n > 0:
                tenants[tenant] = tenants.get(tenant, 0) + n
        for key, n in shard.stats.items():
            stats[key] = stats.get(key, 0) + n
        for pair, n in shard.pairs.items():
            if n > 0:
                pairs[pair] = pairs.get(pair, 0) + n
    by_metric = [(v, n) for (name, v), n in pairs.items() if name == NAME_LABEL]
    by_pair = [(f"{name}={v}", n) for (name, v), n in pairs.items()]
    values: dict[str, int] = {}
    for name, _ in pairs:
        values[name] = values.get(name, 0) + 1
    return TsdbStatus(
        num_series=sum(s.series for s in shards),
        num_label_pairs=len(pairs),
        series_by_metric=_top(by_metric, top),
        series_by_pair=_top(by_pair, top),
        values_by_label=_top(list(values.items()), top),
        series_by_tenant=tenants,
        tenant_label=limits.tenant_label,
        max_series_total=limits.max_series_total,
        max_series_per_tenant=limits.max_series_per_tenant,
        shards=len(shards),
        refusals=parse_refusals(stats),
        truncated=any(s.truncated for s in shards),
    )


def _top(items: Iterable[tuple[str, int]], n: int) -> list[tuple[str, int]]:
    return heapq.nsmallest(n, items, key=_by_count)


class CardinalityReader:
    """Reads every shard's counts from Redis (a few pipelined round trips per shard)."""

    def __init__(self, *, redis: RedisClient, shards: int, limits: LimitSettings) -> None:
        self._redis: Any = redis  # the redis stubs miss RedisCluster commands
        self._shards = shards
        self._limits = limits

    async def status(self, *, top: int = 10, label_pairs: bool = True) -> TsdbStatus:
        """The store's cardinality now; label pairs beyond ``limits.max_label_values`` per
        shard are left out (``truncated``). Without ``label_pairs`` only series, tenants and
        refusals are read (one round trip: what ``/metrics`` needs every refresh).
        ``StoreUnavailableError`` if Redis is down."""
        with unavailable_on_redis_errors("read cardinality"):
            shards = [await self._shard(shard, label_pairs) for shard in range(self._shards)]
        return summarize(shards, limits=self._limits, top=top)

    async def _shard(self, shard: int, label_pairs: bool) -> ShardCounts:
        pipe = self._redis.pipeline(transaction=False)
        pipe.scard(keys.series_all_key(shard))
        pipe.hgetall(keys.tenant_series_key(shard))
        pipe.hgetall(keys.metrics_stats_key(shard))
        pipe.smembers(keys.label_names_key(shard))
        series, tenants, stats, raw_names = await pipe.execute()
        names = sorted(_text(n) for n in raw_names) if label_pairs else []
        pipe = self._redis.pipeline(transaction=False)
        for name in names:
            pipe.smembers(keys.label_values_key(shard, name))
        per_name = await pipe.execute() if names else []
        bound = self._limits.max_label_values
        wanted: list[tuple[str, str]] = []
        for name, raw_values in zip(names, per_name, strict=True):
            wanted += [(name, _text(v)) for v in raw_values]
        truncated = len(wanted) > bound
        wanted = sorted(wanted)[:bound]
        pipe = self._redis.pipeline(transaction=False)
        for name, value in wanted:
            pipe.scard(keys.postings_key(shard, name, value))
        sizes = await pipe.execute() if wanted else []
        return ShardCounts(
            series=int(series),
            tenants={_text(k): int(v) for k, v in tenants.items()},
            stats={_text(k): int(v) for k, v in stats.items()},
            pairs={pair: int(n) for pair, n in zip(wanted, sizes, strict=True)},
            truncated=truncated,
        )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value

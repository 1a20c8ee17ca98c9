"""The status reporter: the caches and the reconciler's bookkeeping -> the status registry,
the cluster gauges and readiness, once per ``tick_seconds``; with them each cluster's
freshness (``staleness_seconds``), its gateway as the prober saw it, and this replica's role
in the leader election.

Kept apart from the sources and the controller because it only reads them: how fresh the
status is (one tick) never decides when anything is reconciled. Readiness: every cluster
synced, or ``ready_grace_seconds`` passed and every reachable cluster synced (R3: an
unreachable remote must not keep the federator unready forever, nor may it become ready
before the reachable ones have been listed). On start it also registers the planner, so the
status API can compute a plan on the federator's event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from federator.core.election import Leadership
from federator.core.model import ClusterId
from federator.core.probing import GatewayHealth
from federator.lifecycle import cancel_and_wait
from federator.metrics import FederatorMetrics
from federator.reactor.cache import ClusterCache
from federator.reconcile.imported import ImportedIndex
from federator.status import ClusterStatus, Planner, StatusRegistry

CONFLICT_REASONS = ("PortConflict", "TopologyConflict")
"""Every ``reason`` label of the conflicts gauge (each set, to 0 when there is none)."""


@dataclass(frozen=True, slots=True)
class ReporterSettings:
    """How often the status is refreshed, and the readiness grace period."""

    tick_seconds: float = 1.0
    """Status/metrics refresh and readiness check period."""
    ready_grace_seconds: float = 30.0
    """After this long, unreachable clusters no longer hold back readiness."""


class StatusReporter:
    """See the module docstring. ``start()`` returns at once; ``shutdown()`` is idempotent."""

    def __init__(
        self,
        *,
        caches: Mapping[ClusterId, ClusterCache],
        imported: ImportedIndex,
        status: StatusRegistry,
        metrics: FederatorMetrics,
        planner: Planner,
        settings: ReporterSettings | None = None,
        leadership: Callable[[], Leadership] | None = None,
        gateways: Mapping[ClusterId, GatewayHealth] | None = None,
    ) -> None:
        """``leadership``: this replica's role (leader election); None: no election.
        ``gateways``: the gateway prober's latest health per cluster."""
        self.settings = settings or ReporterSettings()
        self._leadership = leadership
        self._gateways = gateways or {}
        self._caches = caches
        self._imported = imported
        self._status = status
        self._metrics = metrics
        self._planner = planner
        self._exported: dict[ClusterId, tuple[int, int]] = {}
        """Per cluster: (the cache's generation, its exported count then)."""
        self._started = 0.0
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    async def start(self) -> None:
        if self._task is not None or self._stopped:
            return
        self._started = time.monotonic()
        self._status.set_planner(self._planner)
        self._task = asyncio.create_task(self._tick(), name="status-reporter")

    async def shutdown(self) -> None:
        """Stop refreshing (idempotent); the registry keeps the last status."""
        self._stopped = True
        task, self._task = self._task, None
        await cancel_and_wait([task] if task is not None else [])

    async def _tick(self) -> None:
        while True:
            self.refresh()
            await asyncio.sleep(self.settings.tick_seconds)

    def _exported_count(self, name: ClusterId, cache: ClusterCache) -> int:
        """Recounted only when the cache changed: at 10 clusters counting every tick was a
        fifth of the event loop's time while converging (profiled)."""
        generation, count = self._exported.get(name, (-1, 0))
        if generation != cache.generation:
            count = len(cache.exported_keys())
            self._exported[name] = (cache.generation, count)
        return count

    def refresh(self) -> None:
        """One refresh of every cluster's status and gauges, the conflicts and readiness."""
        now = time.monotonic()
        for name, cache in self._caches.items():
            age = None if cache.last_sync is None else _age(cache.last_sync)
            if cache.healthy and cache.synced:
                age = 0.0
            self._status.set_cluster(
                ClusterStatus(
                    name=name,
                    reachable=cache.healthy,
                    synced=cache.synced,
                    stale=not (cache.synced and cache.healthy),
                    last_sync_time=cache.last_sync,
                    exported_count=self._exported_count(name, cache),
                    imported_count=self._imported.count(name),
                    error=None if cache.healthy else cache.error,
                    staleness_seconds=age,
                    gateway=self._gateways.get(name, GatewayHealth()),
                )
            )
            self._metrics.cluster_up.labels(cluster=name).set(1 if cache.healthy else 0)
            self._metrics.cluster_synced.labels(cluster=name).set(1 if cache.synced else 0)
            if age is not None:
                self._metrics.cluster_last_sync_age.labels(cluster=name).set(age)
        by_reason: dict[str, int] = {}
        for svc in self._status.services():
            for conflict in svc.conflicts:
                by_reason[conflict.reason.value] = by_reason.get(conflict.reason.value, 0) + 1
        for reason in CONFLICT_REASONS:
            self._metrics.conflicts.labels(reason=reason).set(by_reason.get(reason, 0))
        if self._leadership is not None:
            self._status.set_leadership(self._leadership())
        caches = self._caches.values()
        all_synced = all(c.synced for c in caches)
        grace_over = now - self._started >= self.settings.ready_grace_seconds
        reachable_synced = all(c.synced for c in caches if c.healthy or not c.error)
        self._status.set_ready(all_synced or (grace_over and reachable_synced))


def _age(when: datetime) -> float:
    return max(0.0, (datetime.now(UTC) - when).total_seconds())

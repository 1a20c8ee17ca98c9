"""The federator's main loop: watches -> caches -> keys -> work queue -> reconcile workers.

Per member cluster, one watch task per kind (Services, EndpointSlices, ServiceExports,
Namespaces) feeds that cluster's ``ClusterCache``; each event maps to keys that go into one
de-duplicating ``WorkQueue``; ``workers`` tasks reconcile keys. Besides events:

- when a cluster becomes synced and healthy (first sync, or back after an outage), every key
  is enqueued, plus the keys of the objects meshfed owns there (orphans from an earlier run):
  this is what converges after a restart or a partition;
- every ``resyncPeriod`` every key is enqueued (drift by other writers is undone);
- once a second the status registry and the cluster gauges are refreshed, and readiness is
  decided: every cluster synced, or ``ready_grace`` seconds passed and every reachable cluster
  synced (an unreachable remote must not keep the federator unready, R3).

``replace_client(cluster, client)`` takes over rotated credentials (R7, called by
``federator.kube.credentials_watch``): the entry in the shared ``clients`` dict is swapped (the
reconciler reads the same dict), that cluster's watches restart with the new client (their
relist refreshes the cache), every key is enqueued (work refused with the old credentials is
retried) and the old client is closed after a grace period (requests in flight on it finish).

``start()`` returns at once; ``shutdown()`` is idempotent and cancels every task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine, MutableMapping
from dataclasses import dataclass, field

from federator.core.config import FederationConfig
from federator.core.mapping import NAMESPACES, Affected
from federator.core.model import SERVICE_ANNOTATION, ClusterId, ServiceKey
from federator.errors import FederatorError
from federator.kube.client import KubeClient
from federator.kube.watching import Changed, Disconnected, Relisted, WatchSettings, watch_resource
from federator.metrics import FederatorMetrics
from federator.reactor.cache import ClusterCache
from federator.reactor.workqueue import QueueShutdown, WorkQueue
from federator.reactor.world import RESOURCES, CacheWorld
from federator.reconcile.reconciler import Reconciler, Result, list_owned
from federator.status import ClusterStatus, StatusRegistry

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunnerSettings:
    """Runtime knobs of the runner (the federation config holds the rest)."""

    workers: int = 4
    """Concurrent reconciles (different keys; one key is never reconciled twice at once)."""
    ready_grace_seconds: float = 30.0
    """After this long, unreachable clusters no longer hold back readiness."""
    queue_max: int = 100_000
    """Work queue bound (keys)."""
    watch: WatchSettings = field(default_factory=WatchSettings)
    tick_seconds: float = 1.0
    """Status/metrics refresh and readiness check period."""
    retired_client_grace_seconds: float = 40.0
    """After a credential rotation the old client is closed this long after the swap (longer
    than a request timeout, so requests in flight on it finish)."""


class Runner:
    """See the module docstring."""

    def __init__(
        self,
        *,
        config: FederationConfig,
        clients: MutableMapping[ClusterId, KubeClient],
        metrics: FederatorMetrics,
        status: StatusRegistry,
        settings: RunnerSettings | None = None,
    ) -> None:
        self.config = config
        self.settings = settings or RunnerSettings()
        self.metrics = metrics
        self.status = status
        self.clients = clients
        self.caches = {c.name: ClusterCache(settings=c) for c in config.clusters}
        self.world = CacheWorld(self.caches)
        self.queue: WorkQueue[ServiceKey] = WorkQueue(max_size=self.settings.queue_max)
        self.reconciler = Reconciler(
            config=config, world=self.world, clients=clients, metrics=metrics, status=status
        )
        self._observed: dict[ServiceKey, float] = {}
        self._orphans: set[ServiceKey] = set()
        self._trusted: dict[ClusterId, bool] = dict.fromkeys(config.cluster_ids, False)
        self._tasks: list[asyncio.Task[None]] = []
        self._watches: dict[ClusterId, list[asyncio.Task[None]]] = {}
        self._retired: set[KubeClient] = set()
        self._started = 0.0
        self._stopped = False

    # ---- lifecycle
    async def start(self) -> None:
        """Start every task and return."""
        if self._tasks:
            return
        self._started = time.monotonic()
        self.status.set_planner(self.reconciler.plan_all)
        for name in self.config.cluster_ids:
            self._start_watches(name)
        for i in range(self.settings.workers):
            self._spawn(self._worker(), f"worker-{i}")
        self._spawn(self._tick(), "tick")
        self._spawn(self._resync(), "resync")

    def _spawn(self, coro: Coroutine[object, object, None], name: str) -> asyncio.Task[None]:
        self._tasks = [t for t in self._tasks if not t.done()]
        task = asyncio.create_task(coro, name=name)
        self._tasks.append(task)
        return task

    def _start_watches(self, name: ClusterId) -> None:
        self._watches[name] = [
            self._spawn(self._watch(name, kind), f"watch-{name}-{kind}") for kind in RESOURCES
        ]

    async def replace_client(self, name: ClusterId, client: KubeClient) -> None:
        """Use ``client`` for cluster ``name`` from now on (see the module docstring)."""
        old = self.clients[name]
        self.clients[name] = client
        if not self._tasks or self._stopped:
            await old.aclose()  # not running: nothing can be using the old client
            return
        watches = self._watches.pop(name, [])
        for task in watches:
            task.cancel()
        for task in watches:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._start_watches(name)
        for key in self.all_keys():
            self.queue.add(key)
        self._retired.add(old)
        self._spawn(self._close_later(old), f"close-old-client-{name}")
        log.info("cluster %s: new client in use, watches restarted", name)

    async def _close_later(self, client: KubeClient) -> None:
        await asyncio.sleep(self.settings.retired_client_grace_seconds)
        self._retired.discard(client)
        await client.aclose()

    async def shutdown(self) -> None:
        """Cancel every task (idempotent)."""
        self._stopped = True
        self.queue.shutdown()
        tasks, self._tasks = self._tasks, []
        self._watches.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        retired, self._retired = self._retired, set()
        for client in retired:
            await client.aclose()

    # ---- watches
    async def _watch(self, name: ClusterId, kind: str) -> None:
        cache = self.caches[name]

        def restarted(reason: str) -> None:
            self.metrics.watch_restarts.labels(
                cluster=name, resource=RESOURCES[kind].plural, reason=reason
            ).inc()

        async for event in watch_resource(
            client=self.clients[name],
            resource=RESOURCES[kind],
            settings=self.settings.watch,
            on_restart=restarted,
        ):
            if isinstance(event, Relisted):
                self._enqueue(cache, cache.replace(kind, event.items), source=kind != NAMESPACES)
            elif isinstance(event, Changed):
                affected = cache.apply_event(kind, event.type, event.obj)
                self._enqueue(cache, affected, source=kind != NAMESPACES)
            elif isinstance(event, Disconnected):
                cache.mark_disconnected(kind, event.error)
                log.warning("cluster %s: watch of %s failed: %s", name, kind, event.error)

    def _enqueue(self, cache: ClusterCache, affected: Affected, *, source: bool) -> None:
        if not affected or not cache.synced:
            return  # the initial lists are followed by a full enqueue (_tick)
        keys = set(affected.keys)
        if affected.whole_cluster:
            keys |= cache.candidate_keys()
        if affected.namespaces:
            keys |= {k for k in self.all_keys() if k.namespace in affected.namespaces}
        now = time.monotonic()
        for key in keys:
            if source:
                self._observed.setdefault(key, now)
            self.queue.add(key)

    def all_keys(self) -> set[ServiceKey]:
        keys = self.world.known_keys() | self._orphans
        for imported in self.reconciler.imported.values():
            keys |= imported
        return keys

    # ---- workers
    async def _worker(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except QueueShutdown:
                return
            observed = self._observed.pop(key, None)
            try:
                result = await self.reconciler.reconcile(key, observed_at=observed)
            except Exception as exc:  # a bug must not kill the worker; retry with backoff
                log.exception("reconcile %s crashed", key)
                self.metrics.reconciles.labels(result="crash").inc()
                result = Result(requeue=True, error=repr(exc))
            finally:
                self.queue.done(key)
            if result.requeue:
                if observed is not None:
                    self._observed.setdefault(key, observed)
                self.queue.requeue(key, at_least=result.retry_after)
            else:
                self.queue.forget(key)

    # ---- periodic
    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(self.config.resync_period_seconds)
            for key in self.all_keys():
                self.queue.add(key)

    async def _tick(self) -> None:
        while True:
            for name, cache in self.caches.items():
                trusted = cache.synced and cache.healthy
                if trusted and not self._trusted[name]:
                    await self._on_trusted(name)
                self._trusted[name] = trusted
            self._refresh_status()
            await asyncio.sleep(self.settings.tick_seconds)

    async def _on_trusted(self, name: ClusterId) -> None:
        """A cluster (re)gained synced+healthy: reconcile everything, orphans included."""
        try:
            for obj in await list_owned(self.clients[name]):
                raw = ((obj.get("metadata") or {}).get("annotations") or {}).get(SERVICE_ANNOTATION)
                if isinstance(raw, str) and "/" in raw:
                    ns, _, svc = raw.partition("/")
                    self._orphans.add(ServiceKey(ns, svc))
        except FederatorError as exc:
            log.warning("cluster %s: listing owned objects failed: %s", name, exc)
        log.info("cluster %s synced and healthy: enqueueing all services", name)
        for key in self.all_keys():
            self.queue.add(key)

    def _refresh_status(self) -> None:
        now = time.monotonic()
        for name, cache in self.caches.items():
            age = None if cache.last_sync is None else _age(cache.last_sync)
            self.status.set_cluster(
                ClusterStatus(
                    name=name,
                    reachable=cache.healthy,
                    synced=cache.synced,
                    stale=not (cache.synced and cache.healthy),
                    last_sync_time=cache.last_sync,
                    exported_count=len(cache.exported_keys()),
                    imported_count=len(self.reconciler.imported[name]),
                    error=None if cache.healthy else cache.error,
                )
            )
            self.metrics.cluster_up.labels(cluster=name).set(1 if cache.healthy else 0)
            self.metrics.cluster_synced.labels(cluster=name).set(1 if cache.synced else 0)
            if cache.healthy and cache.synced:
                age = 0.0
            if age is not None:
                self.metrics.cluster_last_sync_age.labels(cluster=name).set(age)
        by_reason: dict[str, int] = {}
        for svc in self.status.services():
            for conflict in svc.conflicts:
                by_reason[conflict.reason.value] = by_reason.get(conflict.reason.value, 0) + 1
        for reason in ("PortConflict", "TopologyConflict"):
            self.metrics.conflicts.labels(reason=reason).set(by_reason.get(reason, 0))
        self.metrics.queue_depth.set(len(self.queue))
        self.metrics.queue_drops.set(self.queue.drops)
        all_synced = all(c.synced for c in self.caches.values())
        grace_over = now - self._started >= self.settings.ready_grace_seconds
        reachable_synced = all(c.synced for c in self.caches.values() if c.healthy or not c.error)
        self.status.set_ready(all_synced or (grace_over and reachable_synced))


def _age(when: object) -> float:
    from datetime import UTC, datetime  # noqa: PLC0415

    assert isinstance(when, datetime)
    return max(0.0, (datetime.now(UTC) - when).total_seconds())

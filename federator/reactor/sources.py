"""Sources: watches -> per-cluster caches -> keys. Keys, not events, leave this module.

Per member cluster, one watch task per kind (Services, EndpointSlices, ServiceExports,
Namespaces) keeps that cluster's ``ClusterCache`` current, and one per owned kind (labelled
ServiceEntries, DestinationRules, AuthorizationPolicies) the reconciler's ``OwnedIndex`` of
what meshfed owns there. What a change touches (``federator.core.mapping``) becomes keys
offered to a ``KeySink`` (the controller), stamped with the time the change was observed.
Fifty EndpointSlice updates of one service are one key in the queue, not fifty events.
Besides changes, every key is offered in the background
(behind every changed key, ``federator.reactor.workqueue``):

- when a cluster becomes synced and healthy (first sync, or back after an outage), together
  with the keys of the objects meshfed owns there (orphans from an earlier run): this is what
  converges after a restart or a partition (R2, R6);
- every ``resyncPeriod`` (drift by other writers is undone);
- when this replica becomes the leader (``takeover``: orphans rescanned everywhere);
- after ``restart(cluster)``, which the federator calls when that cluster's client was
  replaced (rotated credentials, R7): its watches restart with the new client (their relist
  refreshes the cache) and work refused with the old credentials is retried.

"Every key" is every key a cache knows, the orphans, every key the reconciler has written
objects for somewhere (``imported``: a service no cluster exports any more still has objects
to prune), and the egress keys of the config (``federator.core.render_policy``).

A watch task never ends on its own (``watch_resource`` retries every ``FederatorError``); if a
bug ends one, it is logged and that kind is marked disconnected, so the cluster is reported
stale instead of silently serving a frozen cache.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from federator.core.config import FederationConfig
from federator.core.mapping import NAMESPACES, Affected
from federator.core.model import SERVICE_ANNOTATION, ClusterId, ServiceKey
from federator.core.render_policy import policy_keys
from federator.errors import FederatorError
from federator.kube.client import KubeClient
from federator.kube.resources import AUTH_POLICIES, DESTINATION_RULES, SERVICE_ENTRIES, Resource
from federator.kube.watching import Changed, Disconnected, Relisted, WatchSettings, watch_resource
from federator.lifecycle import cancel_and_wait
from federator.metrics import FederatorMetrics
from federator.reactor.cache import ClusterCache, held
from federator.reactor.world import LABEL_RESOURCES, RESOURCES, watched
from federator.reconcile.imported import ImportedIndex
from federator.reconcile.owned import OWNED_SELECTOR, OwnedIndex, list_owned, record_of

log = logging.getLogger(__name__)
OWNED_WATCHED = (SERVICE_ENTRIES, DESTINATION_RULES, AUTH_POLICIES)
"""The owned kinds a service key's reconcile reads (``federator.reconcile.owned``)."""


@dataclass(frozen=True, slots=True)
class SourceSettings:
    """Timing of the watches and of the check for clusters that became trustworthy."""

    watch: WatchSettings = field(default_factory=WatchSettings)
    """List+watch timing of every watch."""
    trust_check_seconds: float = 1.0
    """How often each cluster is checked for having become synced and healthy."""


class KeySink(Protocol):
    """Where keys go (``federator.reactor.controller.Controller``)."""

    def add(
        self, key: ServiceKey, *, observed_at: float | None = None, background: bool = False
    ) -> bool:
        """``background``: offered by a full pass (resync, trust, takeover), not a change."""
        ...


class Sources:
    """See the module docstring. ``start()`` returns at once; ``shutdown()`` is idempotent."""

    def __init__(
        self,
        *,
        config: FederationConfig,
        clients: Mapping[ClusterId, KubeClient],
        caches: Mapping[ClusterId, ClusterCache],
        imported: ImportedIndex,
        sink: KeySink,
        metrics: FederatorMetrics,
        settings: SourceSettings | None = None,
        owned: Mapping[ClusterId, OwnedIndex] | None = None,
    ) -> None:
        """``owned``: the reconciler's indexes of what meshfed owns, fed here."""
        self.settings = settings or SourceSettings()
        self._owned = owned or {}
        self._config = config
        self._clients = clients
        self._caches = caches
        self._imported = imported
        self._sink = sink
        self._metrics = metrics
        self._orphans: set[ServiceKey] = set()
        self._trusted: dict[ClusterId, bool] = dict.fromkeys(config.cluster_ids, False)
        self._watches: dict[ClusterId, list[asyncio.Task[None]]] = {}
        self._loops: list[asyncio.Task[None]] = []
        self._stopped = False

    # ---- lifecycle
    async def start(self) -> None:
        if self._loops or self._stopped:
            return
        for name in self._config.cluster_ids:
            self._start_watches(name)
        self._loops = [
            asyncio.create_task(self._check_trust(), name="trust-check"),
            asyncio.create_task(self._resync(), name="resync"),
        ]

    async def shutdown(self) -> None:
        """Cancel every watch and loop and wait for them (idempotent)."""
        self._stopped = True
        tasks = [*self._loops, *(t for ts in self._watches.values() for t in ts)]
        self._loops, self._watches = [], {}
        await cancel_and_wait(tasks)

    async def restart(self, name: ClusterId) -> None:
        """Restart ``name``'s watches with its current client, then offer every key."""
        if self._stopped or not self._loops:
            return
        old = self._watches.pop(name, [])
        try:
            await cancel_and_wait(old)
        finally:
            if not self._stopped:
                for resource in OWNED_WATCHED if name in self._owned else ():
                    self._owned[name].disconnected(resource.kind)  # until the new relist
                self._start_watches(name)
                self.enqueue_all()

    def _start_watches(self, name: ClusterId) -> None:
        self._watches[name] = [
            asyncio.create_task(self._watch(name, kind), name=f"watch-{name}-{kind}")
            for kind in (*RESOURCES, *LABEL_RESOURCES)
        ]
        if name in self._owned:
            self._watches[name] += [
                asyncio.create_task(self._watch_owned(name, r), name=f"owned-{name}-{r.plural}")
                for r in OWNED_WATCHED
            ]

    # ---- keys
    def all_keys(self) -> set[ServiceKey]:
        """Every key worth reconciling (see the module docstring)."""
        keys = set(self._orphans) | policy_keys(self._config)  # egress: one key a namespace
        for cache in self._caches.values():
            keys |= cache.candidate_keys()
        keys.update(self._imported.keys())
        return keys

    def enqueue_all(self) -> None:
        """Offer every key (a full resync) in the background: changed keys go first."""
        for key in self.all_keys():
            self._sink.add(key, background=True)

    def _enqueue(self, cache: ClusterCache, affected: Affected, *, observed: bool) -> None:
        if not affected or not cache.synced:
            return  # the initial lists are followed by a full enqueue (_check_trust)
        keys = set(affected.keys)
        if affected.whole_cluster:
            keys |= cache.candidate_keys()
        if affected.namespaces:
            keys |= {k for k in self.all_keys() if k.namespace in affected.namespaces}
        now = time.monotonic() if observed else None
        for key in keys:
            self._sink.add(key, observed_at=now)

    # ---- watches
    async def _watch(self, name: ClusterId, kind: str) -> None:
        cache = self._caches[name]
        observed = kind != NAMESPACES  # a namespace is no service's change: no latency sample
        resource, selector = watched(kind)
        warned = False

        def restarted(reason: str) -> None:
            self._metrics.watch_restarts.labels(
                cluster=name, resource=resource.plural, reason=reason
            ).inc()

        try:
            async for event in watch_resource(
                client=self._clients[name],
                resource=resource,
                settings=self.settings.watch,
                on_restart=restarted,
                label_selector=selector,
                transform=partial(held, kind=kind),
            ):
                if isinstance(event, Relisted):
                    self._enqueue(cache, cache.replace(kind, event.items), observed=observed)
                elif isinstance(event, Changed):
                    affected = cache.apply_event(kind, event.type, event.obj)
                    self._enqueue(cache, affected, observed=observed)
                elif isinstance(event, Disconnected) and kind in LABEL_RESOURCES:
                    # optional (pods, for subset labels): the cluster stays healthy; said once
                    if not warned:
                        warned = True
                        log.warning(
                            "cluster %s: watch of %s failed (%s): endpoints carry no subset "
                            "labels until it works (grant list/watch on %s)",
                            name, kind, event.error, kind,
                        )  # fmt: skip
                elif isinstance(event, Disconnected):
                    cache.mark_disconnected(kind, event.error)
                    log.warning("cluster %s: watch of %s failed: %s", name, kind, event.error)
                del event  # a relist's items would stay alive until the next event
        except Exception as exc:  # a bug: report the cluster stale rather than frozen
            log.exception("cluster %s: watch of %s crashed", name, kind)
            cache.mark_disconnected(kind, f"watch of {kind} crashed: {exc!r}")

    async def _watch_owned(self, name: ClusterId, resource: Resource) -> None:
        """Keep ``name``'s index of owned ``resource`` current. No keys: our own writes come
        back here, and drift by other writers is undone by the resync, as before."""
        index = self._owned[name]
        try:
            async for event in watch_resource(
                client=self._clients[name],
                resource=resource,
                settings=self.settings.watch,
                label_selector=OWNED_SELECTOR,
                transform=record_of,
            ):
                if isinstance(event, Relisted):
                    index.replace(resource.kind, event.items)
                elif isinstance(event, Changed):
                    index.apply_event(event.type, event.obj)
                else:
                    index.disconnected(resource.kind)  # reconciles list until the relist
                del event  # a relist's items would stay alive until the next event
        except Exception:  # a bug: the reconciler lists instead of reading a frozen index
            log.exception("cluster %s: watch of owned %s crashed", name, resource.plural)
            index.disconnected(resource.kind)

    # ---- periodic
    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(self._config.resync_period_seconds)
            self.enqueue_all()

    async def _check_trust(self) -> None:
        while True:
            for name, cache in self._caches.items():
                trusted = cache.synced and cache.healthy
                if trusted and not self._trusted[name]:
                    await self._on_trusted(name)
                self._trusted[name] = trusted
            await asyncio.sleep(self.settings.trust_check_seconds)

    async def _on_trusted(self, name: ClusterId) -> None:
        """A cluster (re)gained synced+healthy: offer every key, orphans included."""
        await self._scan_owned(name)
        log.info("cluster %s synced and healthy: enqueueing all services", name)
        self.enqueue_all()

    async def takeover(self) -> None:
        """This replica became the leader: find what meshfed owns in every trusted cluster
        (the previous leader may have written services this replica never reconciled) and
        offer every key."""
        for name in [n for n, trusted in self._trusted.items() if trusted]:
            await self._scan_owned(name)
        log.info("leading: enqueueing all services")
        self.enqueue_all()

    async def _scan_owned(self, name: ClusterId) -> None:
        try:
            for raw in await list_owned(self._clients[name], transform=_service_annotation):
                if isinstance(raw, str) and "/" in raw:
                    ns, _, svc = raw.partition("/")
                    self._orphans.add(ServiceKey(ns, svc))
        except FederatorError as exc:
            log.warning("cluster %s: listing owned objects failed: %s", name, exc)


def _service_annotation(obj: Mapping[str, Any]) -> object:
    """All a scan for orphans keeps of an owned object: its service annotation (a
    whole-cluster read of thousands of objects is never held decoded)."""
    return ((obj.get("metadata") or {}).get("annotations") or {}).get(SERVICE_ANNOTATION)

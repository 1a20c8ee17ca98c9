"""The live caches seen as the reconciler's ``World``, and a one-shot snapshot loader.

``CacheWorld`` answers the reconciler from the live per-cluster caches. ``snapshot`` fills
fresh caches with one list per kind and cluster (no watches) for the one-shot commands
(``meshfed plan``, ``meshfed clusters``); a cluster that cannot be listed stays unsynced, so
it is neither written nor trusted for pruning.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping
from typing import Any

from federator.core import mapping
from federator.core.config import FederationConfig
from federator.core.model import SUBSET_LABELS, ClusterId, ClusterView, ServiceKey
from federator.errors import FederatorError
from federator.kube.client import KubeClient
from federator.kube.resources import (
    ENDPOINT_SLICES,
    NAMESPACES,
    PODS,
    SERVICE_EXPORTS,
    SERVICES,
    Resource,
)
from federator.reactor.cache import ClusterCache

RESOURCES: dict[str, Resource] = {
    mapping.SERVICES: SERVICES,
    mapping.ENDPOINT_SLICES: ENDPOINT_SLICES,
    mapping.SERVICE_EXPORTS: SERVICE_EXPORTS,
    mapping.NAMESPACES: NAMESPACES,
}
"""The watched kinds and their API resources."""
LABEL_RESOURCES: dict[str, tuple[Resource, str | None]] = {
    mapping.PODS: (PODS, ",".join(SUBSET_LABELS) if len(SUBSET_LABELS) == 1 else None),
}
"""Optional kinds (``mapping.LABEL_KINDS``) with their label selector: only pods carrying the
subset label are listed (``version``; with several subset labels, every pod)."""


def watched(kind: str) -> tuple[Resource, str | None]:
    """The API resource and label selector of any watched kind."""
    if kind in RESOURCES:
        return RESOURCES[kind], None
    return LABEL_RESOURCES[kind]


class CacheWorld:
    """``federator.reconcile.reconciler.World`` over a set of ``ClusterCache``."""

    def __init__(self, caches: Mapping[ClusterId, ClusterCache]) -> None:
        self.caches = caches

    def views(self, keys: Iterable[ServiceKey] | None) -> dict[ClusterId, ClusterView]:
        wanted = None if keys is None else list(keys)
        return {name: cache.view(wanted) for name, cache in self.caches.items()}

    def service_object(self, cluster: ClusterId, key: ServiceKey) -> Mapping[str, Any] | None:
        cache = self.caches.get(cluster)
        return None if cache is None else cache.service_object(key)

    def writable(self, cluster: ClusterId) -> bool:
        cache = self.caches.get(cluster)
        return cache is not None and cache.synced and cache.healthy

    def known_keys(self) -> set[ServiceKey]:
        keys: set[ServiceKey] = set()
        for cache in self.caches.values():
            keys |= cache.candidate_keys()
        return keys


async def snapshot(
    config: FederationConfig, clients: Mapping[ClusterId, KubeClient]
) -> tuple[CacheWorld, dict[ClusterId, str]]:
    """Caches filled by one list per kind; plus the error of each cluster that failed."""
    caches = {c.name: ClusterCache(settings=c) for c in config.clusters}
    errors: dict[ClusterId, str] = {}

    async def load(name: ClusterId) -> None:
        try:
            for kind, resource in RESOURCES.items():
                result = await clients[name].list(resource)
                caches[name].replace(kind, result.items)
        except FederatorError as exc:
            caches[name] = ClusterCache(settings=config.cluster(name))
            errors[name] = str(exc)
            return
        for kind, (resource, selector) in LABEL_RESOURCES.items():
            # optional: without them endpoints simply carry no subset labels
            with contextlib.suppress(FederatorError):
                result = await clients[name].list(resource, label_selector=selector)
                caches[name].replace(kind, result.items)

    await asyncio.gather(*(load(c) for c in config.cluster_ids))
    return CacheWorld(caches), errors

"""Drill objects of the home cluster, as the gRPC API's ListDrills and WatchDrills read them.

The API serves drills straight from the apiserver (a list per ListDrills, a list+watch per
WatchDrills stream) instead of keeping a cache: drills are few, the calls are rare, and the
Drill objects' status is the one source of truth the drill controller writes, so nothing can
drift. The client is looked up on every call because the home client is replaced when its
credentials rotate.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field

from federator.kube.client import KubeClient, Object
from federator.kube.resources import Resource
from federator.kube.watching import Changed, Relisted, WatchSettings, watch_resource

DRILLS = Resource("meshfed.io", "v1alpha1", "drills", "Drill")
"""The Drill resource (``federator/drills_crd.yaml``)."""


def drill_key(obj: Object) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace", "")), str(meta.get("name", ""))


@dataclass(frozen=True, slots=True)
class DrillChange:
    """One drill added, modified or deleted (``type``: ADDED, MODIFIED, DELETED)."""

    type: str
    obj: Object


@dataclass
class DrillSource:
    """List and watch the Drill objects through ``client()`` (the home cluster's client)."""

    client: Callable[[], KubeClient | None]
    watch: WatchSettings = field(default_factory=WatchSettings)

    def _client(self) -> KubeClient:
        client = self.client()
        if client is None:
            raise LookupError("the federator has no home cluster (see --home-kubeconfig)")
        return client

    async def list(self, namespace: str = "") -> list[Object]:
        """Drills in ``namespace`` (empty: all), sorted by namespace/name."""
        result = await self._client().list(DRILLS, namespace=namespace or None)
        return sorted(result.items, key=drill_key)

    async def changes(self, namespace: str = "") -> AsyncGenerator[DrillChange, None]:
        """Every drill now as ADDED, then each change; after a relist (410, reconnect) the
        difference to what was sent is sent, so a consumer never misses a deletion."""
        known: dict[tuple[str, str], Object] = {}
        client = self._client()
        async for event in watch_resource(client=client, resource=DRILLS, settings=self.watch):
            if isinstance(event, Relisted):
                fresh = {
                    drill_key(o): o
                    for o in event.items
                    if not namespace or drill_key(o)[0] == namespace
                }
                for key in sorted(set(known) - set(fresh)):
                    yield DrillChange("DELETED", known.pop(key))
                for key in sorted(fresh):
                    old = known.get(key)
                    if old is None or _rv(old) != _rv(fresh[key]):
                        yield DrillChange("ADDED" if old is None else "MODIFIED", fresh[key])
                known = fresh
            elif isinstance(event, Changed):
                key = drill_key(event.obj)
                if namespace and key[0] != namespace:
                    continue
                if event.type == "DELETED":
                    known.pop(key, None)
                else:
                    known[key] = event.obj
                yield DrillChange(event.type, event.obj)


def _rv(obj: Object) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))

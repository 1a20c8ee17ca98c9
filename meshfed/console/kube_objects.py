"""The ServiceEntry and DestinationRule meshfed wrote for a service, read from each member.

Only with ``--federation-config``: the console then reads the member clusters with the
federator's own client and credentials (read-only GETs). Without it the Service page says how
to turn this on instead of showing nothing.
"""

from __future__ import annotations

import asyncio
from typing import Any

from federator.core.config import FederationConfig
from federator.core.model import ServiceKey
from federator.core.render import object_name
from federator.kube.client import KubeClient
from federator.kube.clusters import ClusterRegistry
from federator.kube.resources import DESTINATION_RULES, SERVICE_ENTRIES

_SHOWN_METADATA = ("name", "namespace", "labels", "annotations", "generation", "resourceVersion")


def _trim(obj: Any) -> Any:
    """The object without managedFields and status noise: what an operator wants to read."""
    if obj is None:
        return None
    meta = {k: v for k, v in obj.get("metadata", {}).items() if k in _SHOWN_METADATA}
    return {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "metadata": meta,
        "spec": obj.get("spec", {}),
    }


class ObjectReader:
    """GETs through one ``ClusterRegistry`` opened at ``start``."""

    def __init__(self, config: FederationConfig) -> None:
        self.config = config
        self._registry = ClusterRegistry(config)
        self._opened = False

    async def start(self) -> None:
        if not self._opened:
            await self._registry.open()
            self._opened = True

    async def shutdown(self) -> None:
        if self._opened:
            self._opened = False
            await self._registry.aclose()

    async def _one(self, cluster: str, client: KubeClient, key: ServiceKey) -> dict[str, Any]:
        name = object_name(key)
        try:
            se, dr = await asyncio.gather(
                client.get(SERVICE_ENTRIES, key.namespace, name),
                client.get(DESTINATION_RULES, key.namespace, name),
            )
        except Exception as error:  # shown on the page, per cluster
            return {"cluster": cluster, "error": str(error)}
        return {
            "cluster": cluster,
            "service_entry": _trim(se),
            "destination_rule": _trim(dr),
        }

    async def objects(self, namespace: str, name: str) -> list[dict[str, Any]]:
        key = ServiceKey(namespace=namespace, name=name)
        clients = sorted(self._registry.clients.items())
        return list(await asyncio.gather(*(self._one(c, cl, key) for c, cl in clients)))

"""The drill runtime's apiserver I/O: Drill objects and their status, the freeze ConfigMap, and
the drill's VirtualServices in the target clusters.

The status is written through the ``status`` subresource with a full PUT carrying the object's
``resourceVersion``: a stale writer (a replica that lost the Lease, or a second worker) gets a
409 instead of overwriting a newer journal. VirtualServices are server-side applied with the
field manager ``meshfed-drill`` and found again by the drill label only, so rollback needs
nothing from the journal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from federator.core.drills.render import DRILL_FIELD_MANAGER, DRILL_LABEL
from federator.core.render import Manifest
from federator.kube.client import KubeClient
from federator.kube.resources import Resource

DRILLS = Resource("meshfed.io", "v1alpha1", "drills", "Drill")
VIRTUAL_SERVICES = Resource("networking.istio.io", "v1", "virtualservices", "VirtualService")
CONFIG_MAPS = Resource("", "v1", "configmaps", "ConfigMap")
FREEZE_CONFIGMAP = "meshfed-drills-freeze"
"""While a ConfigMap of this name exists in the drills' namespace, drills are frozen."""


@dataclass(frozen=True, slots=True)
class _StatusResource(Resource):
    """A resource's ``status`` subresource (``.../<name>/status``)."""

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = Resource.path(self, namespace, name)
        return f"{base}/status" if name is not None else base


DRILL_STATUS = _StatusResource(DRILLS.group, DRILLS.version, DRILLS.plural, DRILLS.kind)


async def list_drills(home: KubeClient, namespace: str) -> list[dict[str, Any]]:
    return (await home.list(DRILLS, namespace=namespace)).items


async def get_drill(home: KubeClient, namespace: str, name: str) -> dict[str, Any] | None:
    return await home.get(DRILLS, namespace, name)


async def frozen(home: KubeClient, namespace: str) -> bool:
    return await home.get(CONFIG_MAPS, namespace, FREEZE_CONFIGMAP) is not None


async def write_status(
    home: KubeClient, drill: Mapping[str, Any], status: Mapping[str, Any]
) -> dict[str, Any]:
    """PUT ``status`` on the object as read (its resourceVersion is the precondition)."""
    body = {**drill, "status": dict(status)}
    return await home.write_json("PUT", DRILL_STATUS, drill["metadata"]["namespace"], body)


async def list_virtual_services(
    client: KubeClient, *, namespace: str | None = None, drill: str | None = None
) -> list[Manifest]:
    """VirtualServices (of ``drill`` only, when given) in a cluster."""
    selector = f"{DRILL_LABEL}={drill}" if drill is not None else None
    result = await client.list(VIRTUAL_SERVICES, namespace=namespace, label_selector=selector)
    return result.items


async def apply_virtual_services(client: KubeClient, manifests: Iterable[Manifest]) -> None:
    for manifest in manifests:
        await client.apply(manifest, resource=VIRTUAL_SERVICES, field_manager=DRILL_FIELD_MANAGER)


async def delete_objects(client: KubeClient, objects: Iterable[Manifest]) -> int:
    """Delete ``objects`` as read (uid + resourceVersion preconditions); how many were there."""
    deleted = 0
    for obj in objects:
        meta = obj["metadata"]
        deleted += await client.delete(
            VIRTUAL_SERVICES,
            meta["namespace"],
            meta["name"],
            uid=meta["uid"],
            resource_version=meta["resourceVersion"],
        )
    return deleted

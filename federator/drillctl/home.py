"""The drill CLI's writes and reads in the home cluster: Drill objects and the freeze.

- ``run`` creates the Drill by server-side apply with field manager ``meshfed-drill-cli``;
- ``halt`` sets ``spec.halt: true`` by server-side apply with its *own* field manager
  (``meshfed-drill-halt``): applying a partial spec as ``meshfed-drill-cli`` would remove
  every field that manager set before;
- ``freeze`` creates the ConfigMap ``meshfed-drills-freeze`` in the drills' namespace (the
  federator's namespace), which the controller treats as "halt every drill, start none";
  ``unfreeze`` deletes it (with the uid/resourceVersion precondition of ``KubeClient.delete``).

A missing CRD is a 404 on the list: it is reported as such, with the command that installs it.
"""

from __future__ import annotations

import getpass
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from federator.api.drill_source import DRILLS, drill_key
from federator.core.drills.spec import API_VERSION, KIND
from federator.errors import ApiPermanentError, PermanentError
from federator.kube.client import KubeClient, Object
from federator.kube.resources import Resource

CONFIG_MAPS = Resource("", "v1", "configmaps", "ConfigMap")
FREEZE_CONFIGMAP = "meshfed-drills-freeze"
"""The kill switch: while this ConfigMap exists, every drill halts and none starts."""
CLI_FIELD_MANAGER = "meshfed-drill-cli"
HALT_FIELD_MANAGER = "meshfed-drill-halt"
FREEZE_FIELD_MANAGER = "meshfed-drill-freeze"
CRD_FILE = resources.files("federator").joinpath("drills_crd.yaml")
CRD_HINT = f"install it in the home cluster with: kubectl apply -f {CRD_FILE}"


def _missing_crd(exc: ApiPermanentError) -> bool:
    return exc.status == 404


async def list_drills(home: KubeClient, namespace: str | None) -> list[Object]:
    """The drills (all of them, paged), sorted; the CRD hint if the resource is unknown."""
    try:
        result = await home.list(DRILLS, namespace=namespace)
    except ApiPermanentError as exc:
        if _missing_crd(exc):
            raise PermanentError(f"the Drill CRD is not installed: {CRD_HINT}") from exc
        raise
    return sorted(result.items, key=drill_key)


async def get_drill(home: KubeClient, namespace: str, name: str) -> Object:
    obj = await home.get(DRILLS, namespace, name)
    if obj is None:
        await list_drills(home, namespace)  # was the 404 for the name or for the resource?
        raise PermanentError(f"no drill {name} in namespace {namespace} of the home cluster")
    return obj


async def create_drill(home: KubeClient, document: Mapping[str, Any], namespace: str) -> Object:
    """Server-side apply the drill document (a new object; an existing one is refused)."""
    meta = dict(document.get("metadata") or {})
    name = str(meta.get("name"))
    await list_drills(home, namespace)  # the CRD hint rather than apply's bare 404
    existing = await home.get(DRILLS, namespace, name)
    if existing is not None:
        phase = (existing.get("status") or {}).get("phase", "no status yet")
        raise PermanentError(
            f"drill {name} already exists in {namespace} ({phase}): a drill runs once; "
            "delete it (kubectl delete drill) or choose another metadata.name"
        )
    body = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": name,
            "namespace": namespace,
            **({"labels": meta["labels"]} if meta.get("labels") else {}),
            **({"annotations": meta["annotations"]} if meta.get("annotations") else {}),
        },
        "spec": dict(document.get("spec") or {}),
    }
    return await home.apply(body, resource=DRILLS, field_manager=CLI_FIELD_MANAGER)


async def halt_drill(home: KubeClient, namespace: str, name: str) -> Object:
    await get_drill(home, namespace, name)
    body = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"halt": True},
    }
    return await home.apply(body, resource=DRILLS, field_manager=HALT_FIELD_MANAGER)


async def frozen(home: KubeClient, namespace: str) -> Object | None:
    """The freeze ConfigMap, or None if drills are not frozen."""
    return await home.get(CONFIG_MAPS, namespace, FREEZE_CONFIGMAP)


async def freeze(home: KubeClient, namespace: str, reason: str, *, now: datetime) -> Object:
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": FREEZE_CONFIGMAP,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "meshfed"},
        },
        "data": {
            "reason": reason,
            "frozenBy": _user(),
            "frozenAt": now.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        },
    }
    return await home.apply(body, resource=CONFIG_MAPS, field_manager=FREEZE_FIELD_MANAGER)


async def unfreeze(home: KubeClient, namespace: str) -> bool:
    """Delete the freeze; False if there was none."""
    obj = await frozen(home, namespace)
    if obj is None:
        return False
    meta = obj["metadata"]
    return await home.delete(
        CONFIG_MAPS,
        namespace,
        FREEZE_CONFIGMAP,
        uid=meta["uid"],
        resource_version=meta["resourceVersion"],
    )


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"

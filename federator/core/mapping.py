"""Watch event -> the global-service keys to reconcile. Pure.

Keys, not events, are queued (controller-runtime's model): the reconciler reads the current
state of every cluster for the key, so it does not matter which event caused it.

- Service, ServiceExport: their own namespace/name.
- EndpointSlice: the Service named by its ``kubernetes.io/service-name`` label.
- the east-west gateway Service: every service the cluster exports (its address is in all of
  their ServiceEntries elsewhere) - ``Affected.whole_cluster``.
- Namespace: every global service in that namespace (it may now be written, or not) -
  ``Affected.namespaces``; the sources expand it with the keys they know.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from federator.core.config import GatewaySettings
from federator.core.convert import is_gateway_service, key_of, meta, slice_service_key
from federator.core.model import ServiceKey

SERVICES = "services"
ENDPOINT_SLICES = "endpointslices"
SERVICE_EXPORTS = "serviceexports"
NAMESPACES = "namespaces"
KINDS = (SERVICES, ENDPOINT_SLICES, SERVICE_EXPORTS, NAMESPACES)
"""The per-cluster watched kinds (by resource plural) a cluster must have listed to be synced."""
PODS = "pods"
LABEL_KINDS = (PODS,)
"""Also watched, for the subset labels of endpoints only (a pod's ``version``): optional, a
cluster whose pods cannot be listed still syncs and its endpoints carry no subset labels.
What a pod change touches is known from the cache's slice index (``ClusterCache``)."""


@dataclass(slots=True)
class Affected:
    """What an event (or a relist) touches."""

    keys: set[ServiceKey] = field(default_factory=set)
    namespaces: set[str] = field(default_factory=set)
    whole_cluster: bool = False
    """Every key the cluster exports (the gateway changed)."""

    def merge(self, other: Affected) -> None:
        self.keys |= other.keys
        self.namespaces |= other.namespaces
        self.whole_cluster = self.whole_cluster or other.whole_cluster

    def __bool__(self) -> bool:
        return bool(self.keys or self.namespaces or self.whole_cluster)


def affected_by(
    kind: str,
    obj: Mapping[str, Any] | None,
    *,
    gateway: GatewaySettings,
) -> Affected:
    """What one object (old or new version) of ``kind`` touches."""
    out = Affected()
    if obj is None:
        return out
    if kind == SERVICES:
        out.keys.add(key_of(obj))
        if is_gateway_service(obj, gateway):
            out.whole_cluster = True
    elif kind == SERVICE_EXPORTS:
        out.keys.add(key_of(obj))
    elif kind == ENDPOINT_SLICES:
        key = slice_service_key(obj)
        if key is not None:
            out.keys.add(key)
    elif kind == NAMESPACES:
        out.namespaces.add(str(meta(obj).get("name", "")))
    return out


def affected_by_change(
    kind: str,
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any] | None,
    *,
    gateway: GatewaySettings,
) -> Affected:
    """What replacing ``old`` by ``new`` touches (both versions count: a slice may move)."""
    out = affected_by(kind, old, gateway=gateway)
    out.merge(affected_by(kind, new, gateway=gateway))
    return out

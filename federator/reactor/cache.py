"""Per-cluster index of the watched objects, and the ``ClusterView`` the pure core reads.

One ``ClusterCache`` per member cluster holds the last-known Services, ServiceExports,
EndpointSlices and Namespaces (and the subset labels, such as ``version``, of the pods behind
the slices), kept current by the watches (``apply_event``/``replace``). A
relist replaces a kind's whole index, so objects deleted during a watch gap disappear. When a
watch fails the content is **kept** and the cluster is marked unhealthy: other clusters keep
its last-known endpoints (fail-static) and nothing is pruned on its behalf. ``view(keys)``
converts the raw objects of the requested keys into the model (``federator.core.convert``);
conversion is lazy, per reconcile, so an event costs an index update only.

Each object is held as the compact JSON of its slim form (``slim``), decoded when read. Why:
at Istio's published shape (10 clusters x 300 Services and 4,000 endpoints each) the slim
objects as Python dicts and tuples were ~17 MiB; as bytes they are ~3.5 MiB. A read
decodes the few objects of one service (6 us a Service, 16 us a slice of 13 endpoints);
the indexes that every reconcile or status refresh needs (slices per service,
labelled Services, exported keys) are kept decoded.

Single-threaded by design: only the federator's event loop touches a cache (the sources
write, the reconciler and the status reporter read).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, cast

from federator.core import convert
from federator.core.config import ClusterSettings
from federator.core.mapping import (
    ENDPOINT_SLICES,
    KINDS,
    NAMESPACES,
    PODS,
    SERVICE_EXPORTS,
    SERVICES,
    Affected,
    affected_by_change,
)
from federator.core.model import (
    ClusterView,
    Endpoint,
    ExportedService,
    ServiceKey,
)
from federator.reactor.held import (
    Held,
    Object,
    ObjKey,
    decode,
    encode,
    held,
    slim,
)
from federator.reactor.pods import PodLabels, PodRef, SlimPod, pods_of, slim_pod

__all__ = ["ClusterCache", "Held", "decode", "encode", "held", "slim"]

Watched = Mapping[str, Any] | Held | SlimPod
"""An object as a watch hands it over: raw, or already in the form the cache holds."""


class ClusterCache:
    """The last-known content of one member cluster and the state of its watches."""

    def __init__(self, *, settings: ClusterSettings) -> None:
        self.settings = settings
        self.name = settings.name
        self._objects: dict[str, dict[ObjKey, bytes]] = {k: {} for k in KINDS}
        """Kind -> (namespace, name) -> the object's slim form, encoded (``encode``)."""
        self._pods: dict[PodRef, str] = {}
        """Pod -> its subset labels as compact JSON (``_slim_pod``: interned, shared)."""
        self._labelled: set[ObjKey] = set()
        """Services carrying the export label (``candidate_keys`` without decoding them all)."""
        self._exported_memo: tuple[int, frozenset[ServiceKey]] = (-1, frozenset())
        """(generation, exported keys then): the status reporter and the gateway prober ask
        every few seconds; between changes the answer is the same."""
        self._slices_by_service: dict[ServiceKey, ObjKey | set[ObjKey]] = {}
        """Service -> its slice or, when it has several, the set of them (nearly every
        service has one slice per cluster: a set of one costs 216 bytes more)."""
        self._services_by_pod: dict[PodRef, ServiceKey | dict[ServiceKey, int]] = {}
        """Pod -> the service whose slice names it or, when several slices do, each service
        with how many of its slices do: a pod's label change touches exactly those
        services. (One pod behind one slice is nearly every pod: a key, not a dict, saves
        ~0.2 KB a pod, 40,000 pods at the published shape.)"""
        self._synced: set[str] = set()
        self._connected: set[str] = set()
        self.error: str | None = None
        """The last watch error while unhealthy."""
        self.last_sync: datetime | None = None
        """When every watch was last current (set on each event while healthy)."""
        self._gateways: tuple[str, ...] | None = None
        """Memoised gateway addresses; reset whenever a gateway Service changes."""
        self.gateway_healthy = True
        """False while the gateway prober reports this cluster's east-west gateway down."""
        self.generation = 0
        """Counts changes of the content (a reader may memoise what it derives per value)."""

    # ---- watch state
    @property
    def synced(self) -> bool:
        return self._synced.issuperset(KINDS)

    @property
    def healthy(self) -> bool:
        return self._connected.issuperset(KINDS)

    def mark_disconnected(self, kind: str, error: str) -> None:
        self._connected.discard(kind)
        self.error = error

    def _touch(self) -> None:
        if self.synced and self.healthy:
            self.error = None
            self.last_sync = datetime.now(UTC)

    # ---- updates
    def replace(self, kind: str, items: Iterable[Watched]) -> Affected:
        """A relist of ``kind``: the complete set. Returns what changed."""
        if kind == PODS:
            return self._replace_pods(items)
        self.generation += 1
        old = self._objects[kind]
        new: dict[ObjKey, bytes] = {}
        affected = Affected()
        if kind == ENDPOINT_SLICES:
            self._slices_by_service = {}
            self._services_by_pod = {}
        if kind == SERVICES:
            self._gateways = None
            self._labelled = set()
        for item in items:
            k, blob = _held(item, kind)
            new[k] = blob
            after = decode(kind, blob)
            self._index(kind, k, after)
            held = old.get(k)
            if held != blob:
                before = None if held is None else decode(kind, held)
                affected.merge(self._affected(kind, before, after))
        for k, held in old.items():
            if k not in new:  # deleted during the gap
                affected.merge(self._affected(kind, decode(kind, held), None))
        self._objects[kind] = new
        self._synced.add(kind)
        self._connected.add(kind)
        self._touch()
        return affected

    def apply_event(self, kind: str, event_type: str, obj: Watched) -> Affected:
        """One watch event. Returns what it touches."""
        if kind == PODS:
            return self._pod_event(event_type, obj)
        self.generation += 1
        k, blob = _held(obj, kind)
        index = self._objects[kind]
        was = index.get(k)
        before = None if was is None else decode(kind, was)
        after = None if event_type == "DELETED" else decode(kind, blob)
        if before is not None:
            self._unindex(kind, k, before)
        if after is None:
            index.pop(k, None)
        else:
            index[k] = blob
            self._index(kind, k, after)
        self._touch()
        return self._affected(kind, before, after)

    def _replace_pods(self, items: Iterable[Watched]) -> Affected:
        self.generation += 1
        old, new = self._pods, {}
        affected = Affected()
        for item in items:
            ref, labels = _slim_pod(item)
            new[ref] = labels
            if old.get(ref) != labels:
                affected.merge(self._services_naming(ref))
        for ref in old:
            if ref not in new:  # deleted during the gap
                affected.merge(self._services_naming(ref))
        self._pods = new
        self._synced.add(PODS)
        self._connected.add(PODS)
        self._touch()
        return affected

    def _pod_event(self, event_type: str, obj: Watched) -> Affected:
        """A pod's event touches the services whose slices name it, when its subset labels
        changed (not on the status updates that are most of a pod's events)."""
        self.generation += 1
        ref, now = _slim_pod(obj)
        was = self._pods.pop(ref, None)
        labels = None
        if event_type != "DELETED":
            self._pods[ref] = labels = now
        self._touch()
        return Affected() if labels == was else self._services_naming(ref)

    def _services_naming(self, ref: PodRef) -> Affected:
        services = self._services_by_pod.get(ref)
        if services is None:
            return Affected()
        return Affected(keys={services} if isinstance(services, ServiceKey) else set(services))

    def _index(self, kind: str, k: ObjKey, obj: Object) -> None:
        if kind == ENDPOINT_SLICES:
            self._index_slice(k, obj)
        elif kind == SERVICES and convert.is_export_labelled(obj):
            self._labelled.add(k)

    def _unindex(self, kind: str, k: ObjKey, obj: Object) -> None:
        if kind == ENDPOINT_SLICES:
            self._unindex_slice(k, obj)
        elif kind == SERVICES:
            self._labelled.discard(k)

    def _affected(self, kind: str, before: Object | None, after: Object | None) -> Affected:
        out = affected_by_change(kind, before, after, gateway=self.settings.east_west_gateway)
        if out.whole_cluster:
            self._gateways = None
        return out

    def _index_slice(self, k: ObjKey, obj: Object) -> None:
        key = convert.slice_service_key(obj)
        if key is not None:
            held_slices = self._slices_by_service.get(key)
            if held_slices is None:
                self._slices_by_service[key] = k
            elif isinstance(held_slices, set):
                held_slices.add(k)
            elif held_slices != k:
                self._slices_by_service[key] = {held_slices, k}
            for pod in pods_of(obj):
                held = self._services_by_pod.get(pod)
                if held is None:
                    self._services_by_pod[pod] = key
                    continue
                counts = {held: 1} if isinstance(held, ServiceKey) else held
                counts[key] = counts.get(key, 0) + 1
                self._services_by_pod[pod] = counts

    def _unindex_slice(self, k: ObjKey, obj: Object) -> None:
        key = convert.slice_service_key(obj)
        if key is None:
            return
        held_slices = self._slices_by_service.get(key)
        if isinstance(held_slices, set):
            held_slices.discard(k)
            if len(held_slices) == 1:
                self._slices_by_service[key] = next(iter(held_slices))
        elif held_slices == k:
            del self._slices_by_service[key]
        for pod in pods_of(obj):
            held = self._services_by_pod.get(pod)
            counts = {held: 1} if isinstance(held, ServiceKey) else dict(held or {})
            counts[key] = counts.get(key, 1) - 1
            if counts[key] <= 0:
                counts.pop(key, None)
            if not counts:
                self._services_by_pod.pop(pod, None)
            elif len(counts) == 1 and next(iter(counts.values())) == 1:
                self._services_by_pod[pod] = next(iter(counts))
            else:
                self._services_by_pod[pod] = counts

    # ---- reads
    def _get(self, kind: str, k: ObjKey) -> Object | None:
        held = self._objects[kind].get(k)
        return None if held is None else decode(kind, held)

    def service_object(self, key: ServiceKey) -> Object | None:
        return self._get(SERVICES, (key.namespace, key.name))

    def namespaces(self) -> frozenset[str]:
        return frozenset(name for _, name in self._objects[NAMESPACES])

    def candidate_keys(self) -> set[ServiceKey]:
        """Keys that may be exported here (labelled Services and ServiceExports)."""
        keys = {ServiceKey(*k) for k in self._labelled}
        keys.update(ServiceKey(*k) for k in self._objects[SERVICE_EXPORTS])
        return keys

    def exported(self, key: ServiceKey) -> ExportedService | None:
        export = self._get(SERVICE_EXPORTS, (key.namespace, key.name))
        return convert.exported_service(self.name, self.service_object(key), export)

    def exported_keys(self) -> set[ServiceKey]:
        generation, keys = self._exported_memo
        if generation != self.generation:
            keys = frozenset(k for k in self.candidate_keys() if self.exported(k) is not None)
            self._exported_memo = (self.generation, keys)
        return set(keys)

    def _slices_of(self, key: ServiceKey) -> list[ObjKey]:
        held = self._slices_by_service.get(key)
        if held is None:
            return []
        return sorted(held) if isinstance(held, set) else [held]

    def endpoints(self, key: ServiceKey) -> tuple[Endpoint, ...]:
        slices = self._objects[ENDPOINT_SLICES]
        pods = self._pods
        return convert.endpoints_from_slices(
            (decode(ENDPOINT_SLICES, slices[k]) for k in self._slices_of(key)),
            pod_labels=PodLabels(pods) if pods else None,
        )

    def view(self, keys: Iterable[ServiceKey] | None = None) -> ClusterView:
        """The model of this cluster, restricted to ``keys`` (all exported keys if None)."""
        wanted = self.candidate_keys() if keys is None else set(keys)
        exported: dict[ServiceKey, ExportedService] = {}
        endpoints: dict[ServiceKey, tuple[Endpoint, ...]] = {}
        for key in wanted:
            export = self.exported(key)
            if export is not None:
                exported[key] = export
                endpoints[key] = self.endpoints(key)
        return ClusterView(
            cluster=self.name,
            synced=self.synced,
            healthy=self.healthy,
            exported=exported,
            endpoints=endpoints,
            namespaces=self.namespaces(),
            gateway_addresses=self.gateway_addresses(),
            gateway_healthy=self.gateway_healthy,
        )

    def gateway_addresses(self) -> tuple[str, ...]:
        if self._gateways is None:
            gateway = self.settings.east_west_gateway
            in_namespace = (
                decode(SERVICES, blob)
                for (namespace, _), blob in self._objects[SERVICES].items()
                if namespace == gateway.namespace
            )
            self._gateways = convert.gateway_addresses(in_namespace, gateway)
        return self._gateways


def _held(obj: Watched, kind: str) -> Held:
    if isinstance(obj, Held):
        return obj
    form = held(cast("Mapping[str, Any]", obj), kind)
    if not isinstance(form, Held):
        raise TypeError(f"a pod where a {kind} object was expected")
    return form


def _slim_pod(obj: Watched) -> SlimPod:
    if isinstance(obj, Held):
        raise TypeError("a held object where a pod was expected")
    return slim_pod(obj)

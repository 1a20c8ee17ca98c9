"""Raw Kubernetes objects (dicts as the apiserver returns them) -> the pure model. Pure.

- A Service is **exported** when it has the label ``meshfed.io/export: "true"`` or a
  ServiceExport of the same namespace/name exists (a ServiceExport alone is enough; a
  ServiceExport without its Service exports nothing). ExternalName Services are never
  exported (they have no endpoints to federate).
- ``exported_at``: the ServiceExport's creationTimestamp when there is one, else the
  Service's; the older of the two when both export it.
- ``meshfed.io/topology``: ``gateway`` or ``vpn`` (case-insensitive); anything else is kept as
  ``topology_error`` and the configured default applies.
- Endpoints: every address of every IPv4/IPv6 EndpointSlice labelled
  ``kubernetes.io/service-name``; ``conditions.ready`` absent means ready (API contract). An
  address listed by two slices (during a slice rebalance) counts once, ready if any says so.
- Subset labels: an endpoint whose ``targetRef`` names a Pod gets that pod's labels listed in
  ``subset_labels`` (default ``version``) from the ``pod_labels`` lookup the caller passes
  (EndpointSlices do not carry pod labels); DestinationRule subsets select on them.
- Gateway addresses: ``status.loadBalancer.ingress[].ip`` (or ``hostname``) of the Services in
  the gateway namespace whose labels contain the configured selector, sorted by Service name.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from federator.core.config import GatewaySettings
from federator.core.model import (
    EXPORT_LABEL,
    SUBSET_LABELS,
    TOPOLOGY_ANNOTATION,
    ClusterId,
    Endpoint,
    ExportedService,
    ExportVia,
    ServiceKey,
    ServicePort,
    Topology,
)

Object = Mapping[str, Any]
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def meta(obj: Object) -> Mapping[str, Any]:
    m = obj.get("metadata")
    return m if isinstance(m, Mapping) else {}


def key_of(obj: Object) -> ServiceKey:
    m = meta(obj)
    return ServiceKey(str(m.get("namespace", "")), str(m.get("name", "")))


def slice_service_key(obj: Object) -> ServiceKey | None:
    """The Service an EndpointSlice belongs to, or None if it is not labelled."""
    name = (meta(obj).get("labels") or {}).get(SERVICE_NAME_LABEL)
    if not name:
        return None
    return ServiceKey(str(meta(obj).get("namespace", "")), str(name))


def parse_time(value: Any) -> datetime:
    """An RFC 3339 timestamp (``2024-01-01T00:00:00Z``); the epoch if absent or invalid."""
    if not isinstance(value, str):
        return EPOCH
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return EPOCH
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_topology(raw: Any) -> tuple[Topology | None, str | None]:
    """(topology, error) from the ``meshfed.io/topology`` annotation value."""
    if raw is None:
        return None, None
    value = str(raw).strip().lower()
    try:
        return Topology(value), None
    except ValueError:
        return None, (
            f'annotation {TOPOLOGY_ANNOTATION}="{raw}" is not "gateway" or "vpn"; '
            "the configured default topology is used"
        )


def service_ports(service: Object) -> tuple[ServicePort, ...]:
    ports = []
    for p in (service.get("spec") or {}).get("ports") or []:
        if not isinstance(p, Mapping) or not isinstance(p.get("port"), int):
            continue
        ports.append(
            ServicePort(
                name=str(p.get("name") or ""),
                port=int(p["port"]),
                protocol=str(p.get("protocol") or "TCP"),
                app_protocol=p.get("appProtocol"),
                target_port=p.get("targetPort"),
            )
        )
    return tuple(ports)


def is_export_labelled(service: Object) -> bool:
    return (meta(service).get("labels") or {}).get(EXPORT_LABEL) == "true"


def exported_service(
    cluster: ClusterId, service: Object | None, export: Object | None
) -> ExportedService | None:
    """The export of ``service`` (see the module docstring), or None if not exported."""
    if service is None:
        return None
    if (service.get("spec") or {}).get("type") == "ExternalName":
        return None
    labelled = is_export_labelled(service)
    if not labelled and export is None:
        return None
    service_time = parse_time(meta(service).get("creationTimestamp"))
    if export is not None and labelled:
        via = ExportVia.BOTH
        exported_at = min(service_time, parse_time(meta(export).get("creationTimestamp")))
    elif export is not None:
        via = ExportVia.SERVICE_EXPORT
        exported_at = parse_time(meta(export).get("creationTimestamp"))
    else:
        via = ExportVia.LABEL
        exported_at = service_time
    topology, error = parse_topology(
        (meta(service).get("annotations") or {}).get(TOPOLOGY_ANNOTATION)
    )
    return ExportedService(
        cluster=cluster,
        key=key_of(service),
        ports=service_ports(service),
        exported_at=exported_at,
        via=via,
        topology=topology,
        topology_error=error,
    )


PodLabels = Mapping[tuple[str, str], Mapping[str, str]]
"""(namespace, pod name) -> the pod's labels."""


class SliceEndpoint(NamedTuple):
    """One EndpointSlice endpoint, reduced to what the model reads. The caches keep tens of
    thousands of endpoints (10 clusters x 4,000 at Istio's published scale), as a dict each
    ~0.7 KB of memory, as this tuple ~0.2 KB."""

    addresses: tuple[str, ...]
    ready: bool
    """``conditions.ready``; absent means ready (API contract)."""
    zone: str | None
    pod: tuple[str, str] | None
    """(namespace, name) of the Pod the ``targetRef`` names; None for other targets."""


def slice_endpoint(ep: Any, namespace: str) -> SliceEndpoint | None:
    """A raw endpoint of an EndpointSlice in ``namespace`` -> its compact form (None if it is
    not an endpoint at all); a compact one is returned as is."""
    if isinstance(ep, SliceEndpoint):
        return ep
    if not isinstance(ep, Mapping):
        return None
    ref = ep.get("targetRef")
    pod = None
    if isinstance(ref, Mapping) and ref.get("kind", "Pod") == "Pod" and ref.get("name"):
        pod = (sys.intern(str(ref.get("namespace") or namespace)), str(ref["name"]))
    zone = ep.get("zone")
    return SliceEndpoint(
        addresses=tuple(str(a) for a in ep.get("addresses") or ()),
        ready=(ep.get("conditions") or {}).get("ready") is not False,
        zone=sys.intern(str(zone)) if zone else None,  # a handful of zones, 1000s of endpoints
        pod=pod,
    )


def subset_labels_of(
    pod: tuple[str, str] | None, pod_labels: PodLabels, subset_labels: tuple[str, ...]
) -> dict[str, str]:
    """The ``subset_labels`` of the pod an EndpointSlice endpoint's ``targetRef`` names."""
    labels = (pod_labels.get(pod) if pod is not None else None) or {}
    return {k: str(labels[k]) for k in subset_labels if k in labels}


def endpoints_from_slices(
    slices: Iterable[Object],
    *,
    pod_labels: PodLabels | None = None,
    subset_labels: tuple[str, ...] = SUBSET_LABELS,
) -> tuple[Endpoint, ...]:
    """All endpoints (ready or not) of one Service's EndpointSlices, sorted by address. A
    slice's endpoints may be raw dicts or ``SliceEndpoint`` (as the caches keep them)."""
    pods: PodLabels = pod_labels or {}
    by_address: dict[str, Endpoint] = {}
    for s in slices:
        if s.get("addressType", "IPv4") not in ("IPv4", "IPv6"):
            continue
        ports = {
            str(p.get("name") or ""): int(p["port"])
            for p in s.get("ports") or []
            if isinstance(p, Mapping) and isinstance(p.get("port"), int)
        }
        pairs = tuple(sorted(ports.items()))  # one tuple per slice, shared by its endpoints
        namespace = str(meta(s).get("namespace", ""))
        for raw in s.get("endpoints") or []:
            ep = slice_endpoint(raw, namespace)
            if ep is None:
                continue
            labels = subset_labels_of(ep.pod, pods, subset_labels)
            for address in ep.addresses:
                known = by_address.get(address)
                if known is not None and (known.ready or not ep.ready):
                    continue
                by_address[address] = Endpoint(
                    address=address,
                    ports=pairs,
                    ready=ep.ready,
                    zone=ep.zone,
                    labels=tuple(sorted(labels.items())),
                )
    return tuple(by_address[a] for a in sorted(by_address))


def is_gateway_service(service: Object, gateway: GatewaySettings) -> bool:
    if meta(service).get("namespace") != gateway.namespace:
        return False
    labels = meta(service).get("labels") or {}
    return all(labels.get(k) == v for k, v in gateway.selector.items())


def gateway_addresses(services: Iterable[Object], gateway: GatewaySettings) -> tuple[str, ...]:
    """Observed LoadBalancer addresses of the gateway Services (see the module docstring)."""
    out: list[str] = []
    matching = sorted(
        (s for s in services if is_gateway_service(s, gateway)),
        key=lambda s: str(meta(s).get("name")),
    )
    for s in matching:
        for ingress in ((s.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
            address = ingress.get("ip") or ingress.get("hostname")
            if address and address not in out:
                out.append(str(address))
    return tuple(out)

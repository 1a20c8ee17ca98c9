"""Desired global service + target cluster -> ServiceEntry and DestinationRule manifests.

Pure: plain dicts, ready for server-side apply (apiVersion ``networking.istio.io/v1``, served
by Istio 1.22+ for both kinds). Rendering is deterministic - ports sorted by number, endpoints
by (cluster, address), maps built in a fixed order - so two renders of the same state are
byte-identical once serialised, and ``diff`` sees no change.

ServiceEntry, per target cluster T (ADR 0001 explains the host and the ``network`` choices):

- ``hosts: [<name>.<ns>.svc.<suffix>]``, ``location: MESH_INTERNAL``, the merged ports with
  the protocol from ``federator.core.protocol``;
- T's own ready pods (if T exports), locality ``region/zone``;
- per other exporter X, gateway topology: one endpoint per distinct set of subset labels
  (``version``) among X's ready pods - X's east-west gateway address, every port mapped to
  15443, X's locality, those labels, ``weight`` = how many of X's ready pods carry them (so a
  DestinationRule subset ``version: v3`` selects exactly the gateways of clusters running v3,
  weighted by their v3 pods). Left out while X
  has no ready endpoint (Istio reads weight 0 as 1), no known gateway address, or a gateway
  the prober reports down - except that the last endpoint is never withdrawn: if leaving
  the unhealthy gateways out would leave T with no endpoint for the service, they stay
  (``LastEndpointKept`` condition; users of Linkerd and Cilium lost healthy services to
  over-eager cleanup);
- per other exporter X, vpn topology: X's ready pod IPs with their pod ports and subset labels;
- every endpoint labelled ``topology.istio.io/cluster: <cluster>`` and
  ``security.istio.io/tlsMode: istio`` (the DestinationRule makes all of them mTLS, and the
  exporting cluster's AUTO_PASSTHROUGH gateway only forwards to endpoints with that label);
  no ``network`` is set;
- ``resolution: DNS`` when an address is a hostname, else ``STATIC``.

DestinationRule: ``tls.mode: ISTIO_MUTUAL``, ``outlierDetection`` from the config (locality
failover needs it), ``localityLbSetting`` with ``failover`` built from ``failover.regions``:
each listed region fails over to the first *other* region of the list.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from federator.core.config import ClusterSettings, FederationConfig
from federator.core.desired import Contribution, DesiredState, GlobalService
from federator.core.model import (
    ENDPOINT_CLUSTER_LABEL,
    ISTIO_CLUSTER_LABEL,
    ISTIO_TLS_MODE_LABEL,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    SERVICE_ANNOTATION,
    SERVICE_LABEL,
    SOURCES_ANNOTATION,
    ClusterId,
    Condition,
    Endpoint,
    ObjectRef,
    Reason,
    ServiceKey,
    ServicePort,
    Topology,
)
from federator.core.protocol import istio_protocol

API_VERSION = "networking.istio.io/v1"
SERVICE_ENTRY = "ServiceEntry"
DESTINATION_RULE = "DestinationRule"
GATEWAY_PORT = 15443
"""The east-west gateway's mTLS AUTO_PASSTHROUGH port."""
NAME_PREFIX = "meshfed-"

Manifest = dict[str, Any]


@dataclass(frozen=True, slots=True)
class RenderedCluster:
    """Everything meshfed wants in one target cluster."""

    cluster: ClusterId
    manifests: dict[ObjectRef, Manifest]
    """Sorted by ObjectRef (dicts keep insertion order)."""
    conditions: tuple[Condition, ...]


def object_name(key: ServiceKey) -> str:
    """Name of both objects written for ``key`` (prefixed: never clashes with users' own)."""
    return f"{NAME_PREFIX}{key.name}"


def service_label_value(key: ServiceKey) -> str:
    """``<ns>.<name>``; shortened with a hash suffix when longer than a label value may be."""
    value = key.dotted
    if len(value) <= 63:
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:10]
    return f"{value[:52].rstrip('.-_')}-{digest}"


def port_name(port: ServicePort) -> str:
    """The ServiceEntry port name: the Service's, or ``port-<n>`` for an unnamed port."""
    return port.name or f"port-{port.port}"


def is_ip(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


def _metadata(service: GlobalService) -> dict[str, Any]:
    return {
        "name": object_name(service.key),
        "namespace": service.key.namespace,
        "labels": {
            MANAGED_BY_LABEL: MANAGED_BY_VALUE,
            SERVICE_LABEL: service_label_value(service.key),
        },
        "annotations": {
            SERVICE_ANNOTATION: str(service.key),
            SOURCES_ANNOTATION: ",".join(service.sources),
        },
    }


def _locality(region: str, zone: str | None) -> str:
    if not region:
        return ""
    return f"{region}/{zone}" if zone else region


Row = tuple[str, str, tuple[tuple[str, str], ...], dict[str, Any]]
"""(cluster, address, subset labels, ServiceEntry endpoint): sorted on the first three."""


def _entry(
    address: str,
    ports: dict[str, int],
    *,
    cluster: ClusterId,
    locality: str,
    weight: int | None,
    subset: tuple[tuple[str, str], ...] = (),
) -> dict[str, Any]:
    entry: dict[str, Any] = {"address": address}
    if ports:
        entry["ports"] = ports
    # tlsMode: the DestinationRule makes every endpoint ISTIO_MUTUAL, so every endpoint is
    # labelled as a mesh workload; without it the exporting cluster's AUTO_PASSTHROUGH gateway
    # leaves the endpoint out of its SNI cluster and resets cross-cluster connections. The
    # subset labels come first so a pod label can never override the cluster's.
    entry["labels"] = {
        **dict(subset),
        ISTIO_CLUSTER_LABEL: cluster,
        ENDPOINT_CLUSTER_LABEL: cluster,
        ISTIO_TLS_MODE_LABEL: "istio",
    }
    if locality:
        entry["locality"] = locality
    if weight is not None:
        entry["weight"] = weight
    return entry


def _pod_entries(c: Contribution, ports: tuple[ServicePort, ...]) -> Iterable[Row]:
    for ep in c.endpoints:
        pod_ports = _pod_ports(ep, ports)
        locality = _locality(c.region, ep.zone or c.zone)
        entry = _entry(
            ep.address,
            pod_ports,
            cluster=c.cluster,
            locality=locality,
            weight=None,
            subset=ep.labels,
        )
        yield (c.cluster, ep.address, ep.labels, entry)


def _pod_ports(ep: Endpoint, ports: tuple[ServicePort, ...]) -> dict[str, int]:
    mapping = ep.port_map
    return {port_name(p): mapping[p.name] for p in ports if p.name in mapping}


def subset_counts(c: Contribution) -> dict[tuple[tuple[str, str], ...], int]:
    """How many of ``c``'s ready pods carry each distinct set of subset labels."""
    counts: dict[tuple[tuple[str, str], ...], int] = {}
    for ep in c.endpoints:
        counts[ep.labels] = counts.get(ep.labels, 0) + 1
    return counts


def _gateway_entries(
    c: Contribution, ports: tuple[ServicePort, ...], *, keep_unhealthy: bool
) -> list[Row]:
    address = c.gateway_address
    if address is None or c.ready_count == 0:
        return []
    if not (c.gateway_healthy or keep_unhealthy):
        return []
    return [
        (
            c.cluster,
            address,
            subset,
            _entry(
                address,
                {port_name(p): GATEWAY_PORT for p in ports},
                cluster=c.cluster,
                locality=_locality(c.region, c.zone),
                weight=count,
                subset=subset,
            ),
        )
        for subset, count in subset_counts(c).items()
    ]


def _rows(service: GlobalService, target: ClusterId, *, keep_unhealthy: bool) -> list[Row]:
    rows: list[Row] = []
    for c in service.contributions:
        if c.cluster == target or service.topology is Topology.VPN:
            rows.extend(_pod_entries(c, service.ports))
        else:
            rows.extend(_gateway_entries(c, service.ports, keep_unhealthy=keep_unhealthy))
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    return rows


def kept_unhealthy(service: GlobalService, target: ClusterId) -> tuple[ClusterId, ...]:
    """Exporters whose unhealthy gateway stays in ``target``'s ServiceEntry because it is
    all ``target`` has left for the service (the last-endpoint rule, R4)."""
    if _rows(service, target, keep_unhealthy=False):
        return ()
    return tuple(
        dict.fromkeys(ClusterId(r[0]) for r in _rows(service, target, keep_unhealthy=True))
    )


def service_entry(service: GlobalService, target: ClusterId) -> Manifest:
    """The ServiceEntry for ``service`` as written into ``target``.

    An exporter whose gateway the prober reports down is left out - unless that would leave
    ``target`` with no endpoint at all for the service: the last endpoint is never withdrawn
    (``kept_unhealthy``; a ``LastEndpointKept`` condition says so)."""
    rows = _rows(service, target, keep_unhealthy=False) or _rows(
        service, target, keep_unhealthy=True
    )
    endpoints = [r[3] for r in rows]
    dns = any(not is_ip(e["address"]) for e in endpoints)
    spec: dict[str, Any] = {
        "hosts": [service.host],
        "location": "MESH_INTERNAL",
        "ports": [
            {"number": p.port, "name": port_name(p), "protocol": istio_protocol(p)}
            for p in service.ports
        ],
        "resolution": "DNS" if dns else "STATIC",
    }
    if endpoints:
        spec["endpoints"] = endpoints
    return {
        "apiVersion": API_VERSION,
        "kind": SERVICE_ENTRY,
        "metadata": _metadata(service),
        "spec": spec,
    }


def failover_rules(regions: tuple[str, ...]) -> list[dict[str, str]]:
    """``[{from, to}]``: each region fails over to the first other region in the list."""
    rules = []
    for region in regions:
        to = next((r for r in regions if r != region), None)
        if to is not None:
            rules.append({"from": region, "to": to})
    return rules


def destination_rule(service: GlobalService, config: FederationConfig) -> Manifest:
    """The DestinationRule for ``service`` (identical in every target cluster)."""
    od = config.outlier_detection
    locality_lb: dict[str, Any] = {"enabled": True}
    failover = failover_rules(config.failover.regions)
    if failover:
        locality_lb["failover"] = failover
    return {
        "apiVersion": API_VERSION,
        "kind": DESTINATION_RULE,
        "metadata": _metadata(service),
        "spec": {
            "host": service.host,
            "trafficPolicy": {
                "tls": {"mode": "ISTIO_MUTUAL"},
                "outlierDetection": {
                    "consecutive5xxErrors": od.consecutive_5xx_errors,
                    "interval": od.interval,
                    "baseEjectionTime": od.base_ejection_time,
                    "maxEjectionPercent": od.max_ejection_percent,
                },
                "loadBalancer": {"localityLbSetting": locality_lb},
            },
        },
    }


def ref_of(manifest: Manifest, cluster: ClusterId) -> ObjectRef:
    meta = manifest["metadata"]
    return ObjectRef(
        cluster=cluster, kind=manifest["kind"], namespace=meta["namespace"], name=meta["name"]
    )


def render_cluster(
    desired: DesiredState,
    *,
    target: ClusterSettings,
    namespaces: frozenset[str],
    config: FederationConfig,
) -> RenderedCluster:
    """Every manifest meshfed wants in ``target``; services whose namespace does not exist
    there are skipped with a ``NamespaceMissing`` condition."""
    manifests: dict[ObjectRef, Manifest] = {}
    conditions: list[Condition] = []
    for service in desired.services:
        if service.key.namespace not in namespaces:
            conditions.append(
                Condition(
                    service.key,
                    target.name,
                    Reason.NAMESPACE_MISSING,
                    f"namespace {service.key.namespace} does not exist in {target.name}: "
                    f"{service.host} is not written there until it does",
                )
            )
            continue
        conditions.extend(
            Condition(
                service.key,
                target.name,
                Reason.LAST_ENDPOINT_KEPT,
                f"the east-west gateway of {cluster} does not answer, but it is the last "
                f"endpoint of {service.host} in {target.name}: kept rather than leaving "
                "the service without endpoints",
            )
            for cluster in kept_unhealthy(service, target.name)
        )
        for manifest in (
            service_entry(service, target.name),
            destination_rule(service, config),
        ):
            manifests[ref_of(manifest, target.name)] = manifest
    ordered = {ref: manifests[ref] for ref in sorted(manifests)}
    return RenderedCluster(cluster=target.name, manifests=ordered, conditions=tuple(conditions))

"""What should exist: the views of all clusters + the config -> the global services.

Pure and deterministic. A *global service* is every export of the same namespace/name across
the member clusters (namespace sameness, as in the MCS API). For each one this module decides:

- its **ports**: the union of the exporters' TCP ports. When two exporters define a port
  differently (same name or same number, but another number, name, L4 protocol or
  appProtocol), the definition of the **oldest export** wins (MCS conflict rule: oldest
  ServiceExport / labelled Service by creationTimestamp, ties broken by cluster name) and a
  ``PortConflict`` is reported against the loser. The loser still contributes endpoints: its
  pods serve the winning port under the same port name (their pod ports come from their own
  EndpointSlices). UDP/SCTP ports are left out (Istio does not proxy them, and the east-west
  gateway only carries TLS over TCP) and reported;
- its **topology**: the ``meshfed.io/topology`` annotation of the oldest export, else the
  configured default; a different effective topology on another exporter is a
  ``TopologyConflict``;
- each exporter's **contribution**: ready endpoints, locality, gateway address (configured
  override, else the first observed one) and whether its data is trusted (synced and healthy).

Clusters whose watches are down keep contributing their last-known data (fail-static: their
endpoints are not dropped just because we cannot see them right now). A cluster that never
synced has no data and contributes nothing; ``diff`` keeps what it contributed earlier.
Clusters that are not in the config are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from federator.core.config import FederationConfig
from federator.core.model import (
    ClusterId,
    ClusterView,
    Condition,
    ConflictReport,
    Endpoint,
    ExportedService,
    Reason,
    ServiceKey,
    ServicePort,
    Topology,
)

SUPPORTED_L4 = frozenset({"TCP"})


@dataclass(frozen=True, slots=True)
class Contribution:
    """One exporting cluster's part of a global service."""

    cluster: ClusterId
    exported_at_iso: str
    """The export time (ISO 8601), kept for status output."""
    endpoints: tuple[Endpoint, ...]
    """Ready endpoints only, sorted by address."""
    region: str
    zone: str
    gateway_address: str | None
    """Where other clusters reach this cluster's east-west gateway; None if unknown."""
    gateway_healthy: bool
    trusted: bool
    """The cluster's watches are synced and healthy (its data is current)."""

    @property
    def ready_count(self) -> int:
        return len(self.endpoints)


@dataclass(frozen=True, slots=True)
class GlobalService:
    """One service as the federation sees it, ready to be rendered for any target."""

    key: ServiceKey
    host: str
    """``<name>.<namespace>.svc.<host suffix>``."""
    topology: Topology
    ports: tuple[ServicePort, ...]
    """Merged ports, sorted by number."""
    contributions: tuple[Contribution, ...]
    """One per exporting cluster, sorted by cluster name."""
    winner: ClusterId
    """The exporter with the oldest export (its definitions win conflicts)."""

    @property
    def sources(self) -> tuple[ClusterId, ...]:
        return tuple(c.cluster for c in self.contributions)

    def contribution(self, cluster: ClusterId) -> Contribution | None:
        for c in self.contributions:
            if c.cluster == cluster:
                return c
        return None


@dataclass(frozen=True, slots=True)
class DesiredState:
    """All global services (sorted by key), plus what the operator should be told."""

    services: tuple[GlobalService, ...]
    conflicts: tuple[ConflictReport, ...]
    conditions: tuple[Condition, ...]
    """Conditions other than conflicts (invalid annotations, unsupported ports, gateways)."""

    def service(self, key: ServiceKey) -> GlobalService | None:
        for s in self.services:
            if s.key == key:
                return s
        return None


def host_for(key: ServiceKey, host_suffix: str) -> str:
    return f"{key.name}.{key.namespace}.svc.{host_suffix}"


def compute_desired(
    *,
    config: FederationConfig,
    views: Mapping[ClusterId, ClusterView],
    keys: Iterable[ServiceKey] | None = None,
) -> DesiredState:
    """The desired global services from the current views of all member clusters.

    ``keys`` restricts the computation to some services (a reconcile request carries one key);
    ``None`` computes all. Views of clusters missing from ``views`` count as never synced.
    """
    wanted = None if keys is None else set(keys)
    by_key: dict[ServiceKey, list[ExportedService]] = {}
    for cid in config.cluster_ids:
        view = views.get(cid)
        if view is None:
            continue
        for key, export in view.exported.items():
            if wanted is None or key in wanted:
                by_key.setdefault(key, []).append(export)

    services: list[GlobalService] = []
    conflicts: list[ConflictReport] = []
    conditions: list[Condition] = []
    for key in sorted(by_key):
        service = _global_service(
            key,
            by_key[key],
            config=config,
            views=views,
            conflicts=conflicts,
            conditions=conditions,
        )
        if service is not None:
            services.append(service)
    return DesiredState(
        services=tuple(services),
        conflicts=tuple(sorted(conflicts)),
        conditions=tuple(sorted(set(conditions))),
    )


def _global_service(
    key: ServiceKey,
    exports: list[ExportedService],
    *,
    config: FederationConfig,
    views: Mapping[ClusterId, ClusterView],
    conflicts: list[ConflictReport],
    conditions: list[Condition],
) -> GlobalService | None:
    oldest_first = sorted(exports, key=lambda e: (e.exported_at, e.cluster))
    winner = oldest_first[0]
    topology = winner.topology or config.topology
    for e in oldest_first:
        if e.topology_error:
            conditions.append(
                Condition(key, e.cluster, Reason.INVALID_TOPOLOGY_ANNOTATION, e.topology_error)
            )
        effective = e.topology or config.topology
        if effective is not topology:
            conflicts.append(
                ConflictReport(
                    key=key,
                    loser=e.cluster,
                    winner=winner.cluster,
                    reason=Reason.TOPOLOGY_CONFLICT,
                    message=f"{key} in {e.cluster} asks for topology {effective.value}, but "
                    f"the oldest export (in {winner.cluster}) uses {topology.value}",
                )
            )
    ports = merge_ports(key, oldest_first, conflicts, conditions)
    if not ports:
        return None

    contributions = []
    for e in sorted(exports, key=lambda x: x.cluster):
        view = views[e.cluster]
        settings = config.cluster(e.cluster)
        ready = tuple(
            sorted((ep for ep in view.endpoints.get(key, ()) if ep.ready), key=_endpoint_order)
        )
        address = settings.east_west_gateway.address or next(iter(view.gateway_addresses), None)
        if topology is Topology.GATEWAY and len(config.clusters) > 1:
            if address is None:
                conditions.append(
                    Condition(
                        key,
                        e.cluster,
                        Reason.GATEWAY_ADDRESS_UNKNOWN,
                        f"the east-west gateway address of {e.cluster} is unknown: other "
                        "clusters cannot reach its endpoints (set eastWestGateway.address or "
                        "give the gateway Service a LoadBalancer address)",
                    )
                )
            elif not view.gateway_healthy:
                conditions.append(
                    Condition(
                        key,
                        e.cluster,
                        Reason.GATEWAY_UNHEALTHY,
                        f"the east-west gateway of {e.cluster} ({address}) does not answer: "
                        "its endpoints are left out of other clusters until it does",
                    )
                )
        contributions.append(
            Contribution(
                cluster=e.cluster,
                exported_at_iso=e.exported_at.isoformat(),
                endpoints=ready,
                region=settings.region,
                zone=settings.zone,
                gateway_address=address,
                gateway_healthy=view.gateway_healthy,
                trusted=view.trusted,
            )
        )
    return GlobalService(
        key=key,
        host=host_for(key, config.host_suffix),
        topology=topology,
        ports=ports,
        contributions=tuple(contributions),
        winner=winner.cluster,
    )


def _endpoint_order(ep: Endpoint) -> tuple[str, tuple[tuple[str, int], ...]]:
    return (ep.address, ep.ports)


def _describe(p: ServicePort) -> str:
    app = f", appProtocol {p.app_protocol}" if p.app_protocol else ""
    return f'{p.port}/{p.protocol} named "{p.name}"{app}'


def merge_ports(
    key: ServiceKey,
    oldest_first: list[ExportedService],
    conflicts: list[ConflictReport],
    conditions: list[Condition],
) -> tuple[ServicePort, ...]:
    """Union of the exporters' TCP ports; the oldest export wins conflicting definitions."""
    by_name: dict[str, tuple[ServicePort, ClusterId]] = {}
    by_number: dict[int, tuple[ServicePort, ClusterId]] = {}
    for export in oldest_first:
        for port in export.ports:
            if port.protocol.upper() not in SUPPORTED_L4:
                conditions.append(
                    Condition(
                        key,
                        export.cluster,
                        Reason.UNSUPPORTED_PORT_PROTOCOL,
                        f"port {_describe(port)} of {key} in {export.cluster} is not "
                        "federated: only TCP ports can cross clusters through Istio",
                    )
                )
                continue
            clash = by_name.get(port.name) or by_number.get(port.port)
            if clash is None:
                by_name[port.name] = by_number[port.port] = (port, export.cluster)
                continue
            accepted, owner = clash
            if accepted.same_definition(port):
                continue
            conflicts.append(
                ConflictReport(
                    key=key,
                    loser=export.cluster,
                    winner=owner,
                    reason=Reason.PORT_CONFLICT,
                    message=f"{key} in {export.cluster} defines port {_describe(port)}, but "
                    f"the older export in {owner} defines {_describe(accepted)}; the older "
                    "definition is used",
                )
            )
    return tuple(sorted((p for p, _ in by_number.values()), key=lambda p: p.port))

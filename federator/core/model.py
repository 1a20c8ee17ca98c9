"""The federator's domain model: what one cluster exports and what it looks like right now.

These frozen values are the only interface between the I/O layer (``federator.kube`` and the
per-cluster caches, which build them from watched Services, ServiceExports, EndpointSlices and
gateway Services) and the pure core (``federator.core.desired``/``render``/``diff``). No
Kubernetes client types leak in here, so the core is exhaustively unit-testable.

Conventions: ids are NewTypes; collections are tuples (ordered, immutable) or read-only
mappings; every constructor argument is plain data. Sorting for stable output happens in the
core, so producers may hand values over in any order.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import NewType

ClusterId = NewType("ClusterId", str)
"""A member cluster's name as written in the federation config (``clusters[].name``)."""

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "meshfed"
SERVICE_LABEL = "meshfed.io/service"
"""Label on every written object: ``<namespace>.<name>`` of the global service (see
``ServiceKey.label_value`` for names longer than a label value may be)."""
SERVICE_ANNOTATION = "meshfed.io/service"
"""Annotation with the exact ``<namespace>/<name>``, also when the label had to be shortened."""
SOURCES_ANNOTATION = "meshfed.io/source-clusters"
"""Annotation listing the exporting clusters an object was built from: comma-separated, sorted.
Pruning reads it to apply fail-static (see ``federator.core.diff``)."""
EXPORT_LABEL = "meshfed.io/export"
"""A Service with this label set to ``"true"`` is exported (as is one with a ServiceExport)."""
TOPOLOGY_ANNOTATION = "meshfed.io/topology"
"""Per-Service override of the configured topology: ``gateway`` or ``vpn``."""
CLUSTER_SECRET_LABEL = "meshfed.io/cluster"  # noqa: S105 (a label key, not a secret)
"""Label a kubeconfig Secret must carry (value: the cluster name) to be used for that cluster."""
ISTIO_CLUSTER_LABEL = "topology.istio.io/cluster"
"""Endpoint label naming the cluster an endpoint lives in (Istio's own well-known label)."""
ENDPOINT_CLUSTER_LABEL = "meshfed.io/cluster"
"""Endpoint label naming the member cluster an endpoint lives in, for DestinationRule subsets
by cluster. Istio's own ``topology.istio.io/cluster`` cannot serve: istiod overwrites it on
ServiceEntry endpoints with the ID of the cluster the ServiceEntry is read from, so a subset
on it selects nothing remote."""
ISTIO_TLS_MODE_LABEL = "security.istio.io/tlsMode"
"""Endpoint label saying the endpoint speaks Istio mTLS (sidecar injection puts it on pods).
AUTO_PASSTHROUGH east-west gateways forward only to endpoints that carry it."""
FIELD_MANAGER = "meshfed"
"""Server-side-apply field manager of every write."""
SUBSET_LABELS = ("version",)
"""Pod labels carried onto federated endpoints by default: the ones DestinationRule subsets
select on (Bookinfo's ``reviews`` v1/v2/v3). Without them a subset of a federated host selects
no endpoint in istiod."""


class Topology(enum.StrEnum):
    """How a cluster reaches another cluster's pods."""

    GATEWAY = "gateway"
    """Through the remote east-west gateway (port 15443, mTLS AUTO_PASSTHROUGH)."""
    VPN = "vpn"
    """Directly: pod IPs are routable between clusters (one flat network)."""


class ExportVia(enum.StrEnum):
    """What made a Service exported."""

    LABEL = "label"
    SERVICE_EXPORT = "serviceexport"
    BOTH = "both"


@dataclass(frozen=True, slots=True, order=True)
class ServiceKey:
    """A Service's identity across clusters (namespace sameness: same key = same service)."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def dotted(self) -> str:
        """``<namespace>.<name>``, the form used in labels and log lines."""
        return f"{self.namespace}.{self.name}"


@dataclass(frozen=True, slots=True)
class ServicePort:
    """One port of a Service as its owner defined it (``spec.ports[]``)."""

    name: str
    """``spec.ports[].name``; empty for the single unnamed port a Service may have."""
    port: int
    """The service port number clients connect to."""
    protocol: str = "TCP"
    """The L4 protocol: TCP, UDP or SCTP."""
    app_protocol: str | None = None
    """``spec.ports[].appProtocol``; takes precedence over the name prefix for Istio."""
    target_port: int | str | None = None
    """``spec.ports[].targetPort`` (number or container-port name); informative only, the
    real pod port comes from the EndpointSlices."""

    def same_definition(self, other: ServicePort) -> bool:
        """Whether two clusters define this port the same way (target ports may differ)."""
        return (self.name, self.port, self.protocol, self.app_protocol) == (
            other.name,
            other.port,
            other.protocol,
            other.app_protocol,
        )


@dataclass(frozen=True, slots=True)
class ExportedService:
    """A Service one cluster exports."""

    cluster: ClusterId
    key: ServiceKey
    ports: tuple[ServicePort, ...]
    exported_at: datetime
    """When it became exported: the creationTimestamp of the ServiceExport or of the labelled
    Service (the older one if both). The oldest export wins port conflicts (MCS rule)."""
    via: ExportVia = ExportVia.LABEL
    topology: Topology | None = None
    """The ``meshfed.io/topology`` annotation, if present and valid."""
    topology_error: str | None = None
    """Set when the annotation is present but invalid (reported; the default applies)."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One pod address behind a Service, from an EndpointSlice."""

    address: str
    ports: tuple[tuple[str, int], ...]
    """(service port name, pod port) pairs, from the EndpointSlice's ``ports``."""
    ready: bool = True
    """``conditions.ready``; only ready endpoints are federated."""
    zone: str | None = None
    """The EndpointSlice endpoint's ``zone``; the cluster's configured zone if absent."""
    labels: tuple[tuple[str, str], ...] = ()
    """Subset labels of the endpoint's pod (``SUBSET_LABELS``, e.g. ``version``), sorted pairs;
    empty when the pod is unknown or carries none of them."""

    @staticmethod
    def of(
        address: str,
        ports: Mapping[str, int],
        *,
        ready: bool = True,
        zone: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> Endpoint:
        """Build an endpoint from a port mapping (pairs are sorted for stable equality)."""
        return Endpoint(
            address=address,
            ports=tuple(sorted(ports.items())),
            ready=ready,
            zone=zone,
            labels=tuple(sorted((labels or {}).items())),
        )

    @property
    def port_map(self) -> dict[str, int]:
        return dict(self.ports)

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)


@dataclass(frozen=True, slots=True)
class ClusterView:
    """Everything the federator currently knows about one member cluster.

    Built by the I/O layer from its per-cluster cache. When a cluster becomes unreachable the
    cache keeps its last-known content, so ``exported``/``endpoints`` stay filled while
    ``healthy`` turns False; that is what fail-static works from.
    """

    cluster: ClusterId
    synced: bool
    """Every watch of this cluster has completed its initial list at least once."""
    healthy: bool
    """Every watch of this cluster is currently connected (no expired/failed watch)."""
    exported: Mapping[ServiceKey, ExportedService] = field(default_factory=dict)
    endpoints: Mapping[ServiceKey, tuple[Endpoint, ...]] = field(default_factory=dict)
    """All endpoints per exported service (ready or not), merged from its EndpointSlices."""
    namespaces: frozenset[str] = frozenset()
    """Namespaces that exist in this cluster (objects are only written into existing ones)."""
    gateway_addresses: tuple[str, ...] = ()
    """Observed addresses (IPs or hostnames) of the east-west gateway Service, in status order.
    A configured ``eastWestGateway.address`` takes precedence."""
    gateway_healthy: bool = True
    """False when the gateway prober says the gateway does not answer; its endpoints are then
    left out of other clusters' ServiceEntries until it answers again."""

    @property
    def trusted(self) -> bool:
        """Synced and healthy: only then may anything be pruned on this cluster's behalf."""
        return self.synced and self.healthy


class Reason(enum.StrEnum):
    """Machine-readable reasons of the conditions the core reports."""

    PORT_CONFLICT = "PortConflict"
    TOPOLOGY_CONFLICT = "TopologyConflict"
    INVALID_TOPOLOGY_ANNOTATION = "InvalidTopologyAnnotation"
    UNSUPPORTED_PORT_PROTOCOL = "UnsupportedPortProtocol"
    NAMESPACE_MISSING = "NamespaceMissing"
    GATEWAY_ADDRESS_UNKNOWN = "GatewayAddressUnknown"
    GATEWAY_UNHEALTHY = "GatewayUnhealthy"
    LAST_ENDPOINT_KEPT = "LastEndpointKept"
    NO_READY_ENDPOINTS = "NoReadyEndpoints"


@dataclass(frozen=True, slots=True, order=True)
class Condition:
    """Something about a global service the operator should know (status API, Events, metrics).

    ``cluster`` is the cluster the condition is about: for a port conflict the losing exporter
    (the Event goes on its Service), for a missing namespace the target cluster.
    """

    key: ServiceKey
    cluster: ClusterId
    reason: Reason
    message: str


@dataclass(frozen=True, slots=True, order=True)
class ConflictReport:
    """One exporter lost a conflict to the oldest export of the same global service."""

    key: ServiceKey
    loser: ClusterId
    winner: ClusterId
    reason: Reason
    message: str

    def condition(self) -> Condition:
        return Condition(key=self.key, cluster=self.loser, reason=self.reason, message=self.message)


@dataclass(frozen=True, slots=True, order=True)
class ObjectRef:
    """Identity of one object meshfed writes into a target cluster."""

    cluster: ClusterId
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name} in {self.cluster}"

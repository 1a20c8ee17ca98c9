"""Plain views of what istiod sent for one outbound cluster: endpoints with address, port,
weight, locality and priority; the TLS mode; outlier detection.

Envoy's messages answer "what does Envoy do", but the questions an operator (and a test)
asks are meshfed's: which gateway does c3 reach reviews through, with which weight, in which
failover priority, over mTLS or not. These frozen dataclasses hold exactly that and print as
text or JSON. Pure: no sockets.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from google.protobuf.duration_pb2 import Duration

from meshfed.mesh._envoy import (
    Cluster,
    ClusterLoadAssignment,
    HealthStatus,
    TransportSocket,
    UpstreamTlsContext,
)

ISTIO_CERT = "default"
ISTIO_ROOT = "ROOTCA"
"""The SDS secret names pilot-agent serves: the workload certificate and the mesh roots."""


@dataclass(frozen=True, slots=True)
class EndpointView:
    """One ``LbEndpoint`` of a ClusterLoadAssignment, with its locality group's fields."""

    address: str
    port: int
    weight: int
    """``load_balancing_weight`` of the endpoint (1 when unset, as Envoy reads it)."""
    locality: str
    """``region/zone[/subzone]``; empty when istiod sent none."""
    priority: int
    """The locality group's priority: 0 is used first, higher only on failover."""
    locality_weight: int
    health: str
    metadata: dict[str, str]
    """The endpoint's ``istio`` filter metadata (``workload``: name;namespace;workload;
    revision;registry cluster — for ServiceEntry endpoints the cluster holding the entry)."""


@dataclass(frozen=True, slots=True)
class OutlierView:
    consecutive_5xx: int | None
    interval_s: float | None
    base_ejection_s: float | None
    max_ejection_percent: int | None


@dataclass(frozen=True, slots=True)
class TlsView:
    mode: str
    """``ISTIO_MUTUAL`` (Istio's SDS ``default`` + ``ROOTCA``), ``AUTO`` (Istio's auto mTLS:
    ``tlsMode-istio`` socket match), ``TLS`` (another UpstreamTlsContext) or ``NONE``."""
    sni: str
    alpn: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ClusterView:
    name: str
    discovery: str
    """``EDS``, ``STATIC``, ``ORIGINAL_DST``…"""
    tls: TlsView
    outlier: OutlierView | None
    endpoints: tuple[EndpointView, ...]

    @property
    def host(self) -> str:
        """The service host of an ``outbound|<port>|<subset>|<host>`` cluster."""
        parts = self.name.split("|")
        return parts[3] if len(parts) == 4 else ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _seconds(d: Duration) -> float:
    return d.seconds + d.nanos / 1e9


def _tls_context(socket: TransportSocket) -> UpstreamTlsContext | None:
    ctx = UpstreamTlsContext()
    if socket.typed_config.Is(UpstreamTlsContext.DESCRIPTOR) and socket.typed_config.Unpack(ctx):
        return ctx
    return None


def _tls_view(ctx: UpstreamTlsContext, *, auto: bool) -> TlsView:
    common = ctx.common_tls_context
    certs = [s.name for s in common.tls_certificate_sds_secret_configs]
    roots = common.combined_validation_context.validation_context_sds_secret_config.name
    istio = certs == [ISTIO_CERT] and roots == ISTIO_ROOT
    mode = ("AUTO" if auto else "ISTIO_MUTUAL") if istio else "TLS"
    return TlsView(mode=mode, sni=ctx.sni, alpn=tuple(common.alpn_protocols))


def tls_view(cluster: Cluster) -> TlsView:
    """How the client side of ``cluster`` connects: Istio mTLS, other TLS, or plaintext."""
    if cluster.HasField("transport_socket"):
        ctx = _tls_context(cluster.transport_socket)
        if ctx is not None:
            return _tls_view(ctx, auto=False)
    for match in cluster.transport_socket_matches:
        ctx = _tls_context(match.transport_socket)
        if ctx is not None:
            return _tls_view(ctx, auto=True)
    return TlsView(mode="NONE", sni="", alpn=())


def outlier_view(cluster: Cluster) -> OutlierView | None:
    if not cluster.HasField("outlier_detection"):
        return None
    od = cluster.outlier_detection
    return OutlierView(
        consecutive_5xx=od.consecutive_5xx.value if od.HasField("consecutive_5xx") else None,
        interval_s=_seconds(od.interval) if od.HasField("interval") else None,
        base_ejection_s=_seconds(od.base_ejection_time)
        if od.HasField("base_ejection_time")
        else None,
        max_ejection_percent=od.max_ejection_percent.value
        if od.HasField("max_ejection_percent")
        else None,
    )


def _istio_metadata(metadata: Any) -> dict[str, str]:
    istio = metadata.filter_metadata.get("istio")
    if istio is None:
        return {}
    return {k: v.string_value for k, v in istio.fields.items() if v.HasField("string_value")}


def endpoint_views(cla: ClusterLoadAssignment | None) -> tuple[EndpointView, ...]:
    """Every endpoint, sorted by (priority, address, port)."""
    if cla is None:
        return ()
    out = []
    for group in cla.endpoints:
        loc = "/".join(
            p for p in (group.locality.region, group.locality.zone, group.locality.sub_zone) if p
        )
        for lb in group.lb_endpoints:
            sock = lb.endpoint.address.socket_address
            out.append(
                EndpointView(
                    address=sock.address,
                    port=sock.port_value,
                    weight=lb.load_balancing_weight.value
                    if lb.HasField("load_balancing_weight")
                    else 1,
                    locality=loc,
                    priority=group.priority,
                    locality_weight=group.load_balancing_weight.value,
                    health=HealthStatus.Name(lb.health_status),
                    metadata=_istio_metadata(lb.metadata),
                )
            )
    return tuple(sorted(out, key=lambda e: (e.priority, e.address, e.port)))


def cluster_view(cluster: Cluster, cla: ClusterLoadAssignment | None) -> ClusterView:
    return ClusterView(
        name=cluster.name,
        discovery=Cluster.DiscoveryType.Name(cluster.type),
        tls=tls_view(cluster),
        outlier=outlier_view(cluster),
        endpoints=endpoint_views(cla),
    )


def matching(names: Iterable[str], service: str) -> list[str]:
    """Outbound cluster names for ``service``: ``name.namespace`` matches every host under it
    (``reviews.default`` → ``…svc.cluster.local`` and ``…svc.clusterset.local``); a full host
    matches exactly."""
    hits = []
    for name in names:
        parts = name.split("|")
        if len(parts) != 4 or parts[0] != "outbound":
            continue
        host = parts[3]
        if host == service or host.startswith(service + ".svc."):
            hits.append(name)
    return sorted(hits)


def describe(view: ClusterView) -> list[str]:
    """The human summary of one cluster, one line per endpoint."""
    tls = view.tls.mode + (f" sni={view.tls.sni}" if view.tls.sni else "")
    od = view.outlier
    outlier = (
        f"outlier: {od.consecutive_5xx} consecutive 5xx, every {od.interval_s:g}s, eject "
        f"{od.base_ejection_s:g}s, max {od.max_ejection_percent}%"
        if od and od.interval_s is not None and od.base_ejection_s is not None
        else ("outlier: set" if od else "outlier: none")
    )
    lines = [f"{view.name}  [{view.discovery}] tls {tls}; {outlier}"]
    if not view.endpoints:
        lines.append("  (no endpoints)")
    for e in view.endpoints:
        lines.append(
            f"  {e.address}:{e.port}  weight {e.weight}  locality {e.locality or '-'}  "
            f"priority {e.priority}  {e.health}"
        )
    return lines

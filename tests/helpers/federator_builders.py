"""Builders for the federator's pure-core tests: small, explicit world descriptions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

from federator.core.config import (
    ClusterSettings,
    FailoverSettings,
    FederationConfig,
    GatewaySettings,
    KubeconfigFile,
)
from federator.core.desired import DesiredState, compute_desired
from federator.core.model import (
    ClusterId,
    ClusterView,
    Endpoint,
    ExportedService,
    ExportVia,
    ServiceKey,
    ServicePort,
    Topology,
)
from federator.core.render import Manifest, render_cluster

T0 = datetime(2024, 1, 1, tzinfo=UTC)
REVIEWS = ServiceKey("default", "reviews")
HTTP = ServicePort(name="http", port=9080, target_port=9080)
GATEWAYS = {"c1": "192.0.2.1", "c2": "192.0.2.2", "c3": "192.0.2.3"}
REGIONS = {
    "c1": ("region-a", "region-a-1"),
    "c2": ("region-b", "region-b-1"),
    "c3": ("region-c", "region-c-1"),
}


def cid(name: str) -> ClusterId:
    return ClusterId(name)


def cluster_settings(name: str, *, address: str | None = None) -> ClusterSettings:
    region, zone = REGIONS.get(name, ("region-a", "region-a-1"))
    return ClusterSettings(
        name=cid(name),
        kubeconfig=KubeconfigFile(path="/etc/meshfed/kubeconfig", context=name),
        network=f"network-{name}",
        region=region,
        zone=zone,
        east_west_gateway=GatewaySettings(address=address),
    )


def make_config(
    *,
    names: Iterable[str] = ("c1", "c2", "c3"),
    topology: Topology = Topology.GATEWAY,
    regions: tuple[str, ...] = ("region-a", "region-b", "region-c"),
    addresses: Mapping[str, str] | None = None,
) -> FederationConfig:
    addresses = addresses or {}
    return FederationConfig(
        clusters=tuple(cluster_settings(n, address=addresses.get(n)) for n in names),
        topology=topology,
        failover=FailoverSettings(regions=regions),
    )


def export(
    cluster: str,
    *,
    key: ServiceKey = REVIEWS,
    ports: tuple[ServicePort, ...] = (HTTP,),
    minutes: int = 0,
    topology: Topology | None = None,
    via: ExportVia = ExportVia.LABEL,
) -> ExportedService:
    return ExportedService(
        cluster=cid(cluster),
        key=key,
        ports=ports,
        exported_at=T0 + timedelta(minutes=minutes),
        via=via,
        topology=topology,
    )


def pods(prefix: str, count: int, *, port: int = 9080, name: str = "http") -> tuple[Endpoint, ...]:
    return tuple(Endpoint.of(f"{prefix}.{i + 1}", {name: port}) for i in range(count))


def view(
    cluster: str,
    exports: Iterable[ExportedService] = (),
    endpoints: Mapping[ServiceKey, tuple[Endpoint, ...]] | None = None,
    *,
    namespaces: Iterable[str] = ("default", "istio-system"),
    gateway: str | None = "default",
    synced: bool = True,
    healthy: bool = True,
    gateway_healthy: bool = True,
) -> ClusterView:
    address = GATEWAYS.get(cluster, "192.0.2.99") if gateway == "default" else gateway
    return ClusterView(
        cluster=cid(cluster),
        synced=synced,
        healthy=healthy,
        exported={e.key: e for e in exports},
        endpoints=dict(endpoints or {}),
        namespaces=frozenset(namespaces),
        gateway_addresses=(address,) if address else (),
        gateway_healthy=gateway_healthy,
    )


def acceptance_views() -> dict[ClusterId, ClusterView]:
    """reviews exported from c1 (2 pods) and c2 (1 pod); c3 exports nothing."""
    return {
        cid("c1"): view("c1", [export("c1")], {REVIEWS: pods("10.1.0", 2)}),
        cid("c2"): view("c2", [export("c2", minutes=5)], {REVIEWS: pods("10.2.0", 1)}),
        cid("c3"): view("c3"),
    }


def desired_for(config: FederationConfig, views: Mapping[ClusterId, ClusterView]) -> DesiredState:
    return compute_desired(config=config, views=views)


def manifests_for(
    config: FederationConfig, views: Mapping[ClusterId, ClusterView], target: str
) -> list[Manifest]:
    desired = desired_for(config, views)
    rendered = render_cluster(
        desired,
        target=config.cluster(target),
        namespaces=views[cid(target)].namespaces,
        config=config,
    )
    return list(rendered.manifests.values())


def by_kind(manifests: list[Manifest], kind: str) -> Manifest:
    (found,) = [m for m in manifests if m["kind"] == kind]
    return found

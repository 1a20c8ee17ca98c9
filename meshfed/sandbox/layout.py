"""The sandbox's plan: which clusters exist, their ports, CIDRs, regions and addresses.

Pure and deterministic, so that ``up`` run twice computes the same layout, tests can assert
on it, and ``status``/``down`` can find every process and port from ``state.json`` alone.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass
from pathlib import Path

MAX_CLUSTERS = 60
"""Pod CIDRs are 10.<i>.0.0/16 and service CIDRs 10.<100+i>.0.0/16, so i stays below 100;
ports are spaced ten apart per cluster from the base port (four for Kubernetes, six reserved
for istiod, whether or not Istio runs, so turning it on never moves another port)."""

PORTS_PER_CLUSTER = 10
DEFAULT_BASE_PORT = 21000
EASTWEST_PORT = 15443


class Topology(enum.Enum):
    """How remote endpoints are reached: via each cluster's east-west gateway, or directly."""

    GATEWAY = "gateway"
    VPN = "vpn"


@dataclass(frozen=True, slots=True)
class IstiodPorts:
    """istiod's loopback listeners for one cluster (Istio's defaults in brackets)."""

    grpc: int
    """Plaintext xDS gRPC [15010]: what ``meshfed mesh inspect`` and the tests connect to."""
    https: int
    """The validating webhook [15017], registered in the cluster's apiserver by URL."""
    http: int
    """``/ready`` and the ``/debug/*`` endpoints [8080]."""
    monitoring: int
    """Prometheus ``/metrics`` [15014]."""
    secure_grpc: int
    """mTLS xDS and the CA's certificate-signing service [15012]: what pilot-agent uses."""
    ctrlz: int
    """ControlZ introspection [9876]; moved off its fixed default so istiods can coexist."""

    @property
    def all(self) -> tuple[int, ...]:
        return (self.grpc, self.https, self.http, self.monitoring, self.secure_grpc, self.ctrlz)


@dataclass(frozen=True, slots=True)
class ClusterLayout:
    """Everything fixed about one sandbox cluster before it starts."""

    index: int
    name: str
    region: str
    zone: str
    network: str
    apiserver_port: int
    controller_manager_port: int
    scheduler_port: int
    kwok_port: int
    istiod: IstiodPorts
    pod_cidr: str
    service_cidr: str
    gateway_ip: str

    @property
    def server_url(self) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}"

    @property
    def kubernetes_service_ip(self) -> str:
        """The first address of the service CIDR: the in-cluster ``kubernetes`` Service."""
        return str(ipaddress.ip_network(self.service_cidr)[1])

    def node_pod_cidr(self, node: int) -> str:
        """A /24 per fake node inside the cluster's /16, so kwok hands out pod IPs from it."""
        net = ipaddress.ip_network(self.pod_cidr)
        return str(list(net.subnets(new_prefix=24))[node])

    @property
    def ports(self) -> tuple[int, ...]:
        """The Kubernetes processes' ports (istiod's are in :attr:`istiod`)."""
        return (
            self.apiserver_port,
            self.controller_manager_port,
            self.scheduler_port,
            self.kwok_port,
        )


@dataclass(frozen=True, slots=True)
class SandboxLayout:
    """The whole sandbox: one etcd shared by every cluster (distinct key prefixes)."""

    directory: Path
    topology: Topology
    base_port: int
    etcd_client_port: int
    etcd_peer_port: int
    clusters: tuple[ClusterLayout, ...]
    istio: bool = False
    """Whether an istiod runs per cluster (``up --istio``)."""

    @property
    def etcd_url(self) -> str:
        return f"http://127.0.0.1:{self.etcd_client_port}"

    @property
    def ports(self) -> tuple[int, ...]:
        """Every port the sandbox's processes listen on."""
        ports = [self.etcd_client_port, self.etcd_peer_port]
        for cluster in self.clusters:
            ports.extend(cluster.ports)
            if self.istio:
                ports.extend(cluster.istiod.all)
        return tuple(ports)

    @property
    def regions(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.region for c in self.clusters))


def region_names(count: int) -> tuple[str, ...]:
    """Two regions as soon as there are two clusters, so cross-region failover can be drilled."""
    return ("region-a",) if count < 2 else ("region-a", "region-b")


def plan_layout(
    *,
    directory: Path,
    clusters: int,
    topology: Topology = Topology.GATEWAY,
    base_port: int = DEFAULT_BASE_PORT,
    name_prefix: str = "c",
    istio: bool = False,
) -> SandboxLayout:
    """Lay out ``clusters`` clusters: ports from ``base_port``, clusters split across regions.

    Raises ValueError (the CLI prints it) when the request cannot be laid out.
    """
    if not 1 <= clusters <= MAX_CLUSTERS:
        raise ValueError(f"--clusters must be between 1 and {MAX_CLUSTERS}, got {clusters}")
    last_port = base_port + PORTS_PER_CLUSTER * (clusters + 1)
    if base_port < 1024 or last_port > 65535:
        raise ValueError(
            f"--base-port {base_port} leaves no room for {clusters} clusters "
            f"(needs ports {base_port}..{last_port}); pick a base port between 1024 and "
            f"{65535 - PORTS_PER_CLUSTER * (clusters + 1)}"
        )
    regions = region_names(clusters)
    per_region = -(-clusters // len(regions))
    layouts = []
    for i in range(1, clusters + 1):
        region = regions[(i - 1) // per_region]
        zone_number = (i - 1) % per_region + 1
        port = base_port + PORTS_PER_CLUSTER * i
        network = "network-flat" if topology is Topology.VPN else f"network-{name_prefix}{i}"
        layouts.append(
            ClusterLayout(
                index=i,
                name=f"{name_prefix}{i}",
                region=region,
                zone=f"{region}-{zone_number}",
                network=network,
                apiserver_port=port,
                controller_manager_port=port + 1,
                scheduler_port=port + 2,
                kwok_port=port + 3,
                istiod=IstiodPorts(
                    grpc=port + 4,
                    https=port + 5,
                    http=port + 6,
                    monitoring=port + 7,
                    secure_grpc=port + 8,
                    ctrlz=port + 9,
                ),
                pod_cidr=f"10.{i}.0.0/16",
                service_cidr=f"10.{100 + i}.0.0/16",
                gateway_ip=f"127.0.{i}.1",
            )
        )
    return SandboxLayout(
        directory=directory,
        topology=topology,
        base_port=base_port,
        etcd_client_port=base_port,
        etcd_peer_port=base_port + 1,
        clusters=tuple(layouts),
        istio=istio,
    )

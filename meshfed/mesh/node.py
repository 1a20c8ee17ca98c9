"""The Envoy ``Node`` a sidecar sends istiod, built from who the client pretends to be.

istiod decides what to send from the node alone: the id (``sidecar~<ip>~<pod>.<ns>~<ns>.svc.
<domain>``) makes it a sidecar of a namespace, ``CLUSTER_ID`` and ``NETWORK`` place it in the
multicluster topology, the locality drives locality load balancing (EDS priorities), and
``ISTIO_VERSION`` gates features. These are the keys pilot-agent sets for a real sidecar.
Pure: no sockets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.struct_pb2 import Struct

from meshfed.mesh._envoy import Locality, Node

DEFAULT_ISTIO_VERSION = "1.31.0"
"""What the client reports when the sandbox's Istio build is unknown."""
DEFAULT_IP = "10.255.255.1"
"""Outside every sandbox pod CIDR, so istiod finds no pod and trusts the metadata."""


@dataclass(frozen=True, slots=True)
class SidecarIdentity:
    """Who the xDS client claims to be."""

    cluster: str
    """istiod's cluster ID of the proxy (``CLUSTER_ID``), e.g. ``c3``."""
    namespace: str = "default"
    name: str = "meshfed-inspect"
    """The pod name istiod sees."""
    ip: str = DEFAULT_IP
    istio_version: str = DEFAULT_ISTIO_VERSION
    region: str = ""
    zone: str = ""
    network: str = ""
    domain: str = "cluster.local"
    labels: Mapping[str, str] = field(default_factory=lambda: {"app": "meshfed-inspect"})
    node_type: str = "sidecar"
    """``sidecar`` or ``router`` (a gateway)."""

    @property
    def node_id(self) -> str:
        return (
            f"{self.node_type}~{self.ip}~{self.name}.{self.namespace}~"
            f"{self.namespace}.svc.{self.domain}"
        )

    @property
    def locality(self) -> str:
        return "/".join(p for p in (self.region, self.zone) if p)


def metadata(identity: SidecarIdentity) -> dict[str, Any]:
    """The node metadata pilot-agent would send for this identity (ISTIO_META_* keys)."""
    meta: dict[str, Any] = {
        "CLUSTER_ID": identity.cluster,
        "NAMESPACE": identity.namespace,
        "NAME": identity.name,
        "ISTIO_VERSION": identity.istio_version,
        "INTERCEPTION_MODE": "REDIRECT",
        "INSTANCE_IPS": identity.ip,
        "LABELS": dict(identity.labels),
        "WORKLOAD_NAME": identity.name,
        "SERVICE_ACCOUNT": "default",
    }
    if identity.network:
        meta["NETWORK"] = identity.network
    return meta


def sidecar_node(identity: SidecarIdentity) -> Node:
    """The ``Node`` message sent on the first DiscoveryRequest of the stream."""
    meta = Struct()
    meta.update(metadata(identity))
    return Node(
        id=identity.node_id,
        cluster=f"{identity.name}.{identity.namespace}",
        metadata=meta,
        locality=Locality(region=identity.region, zone=identity.zone),
        user_agent_name="meshfed-mesh-inspect",
    )

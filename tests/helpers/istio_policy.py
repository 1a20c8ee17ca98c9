"""Reading policy out of what istiod serves a sidecar: where unknown destinations go (egress)
and the RBAC filters of its inbound listeners (access policy).

The xDS client pretends to be a sidecar of a namespace with given pod labels
(``SidecarIdentity``: istiod picks the Sidecar resource by namespace and the
AuthorizationPolicies by namespace and labels). Envoy's RBAC messages are decoded with the
``xds-protos`` types, so assertions see exactly what Envoy would enforce.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from envoy.extensions.filters.http.rbac.v3 import rbac_pb2 as http_rbac
from envoy.extensions.filters.network.rbac.v3 import rbac_pb2 as network_rbac
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from google.protobuf.json_format import MessageToDict

from meshfed.mesh._envoy import HttpConnectionManager
from meshfed.mesh.node import sidecar_node
from meshfed.mesh.xds import Snapshot, XdsError, snapshot
from tests.helpers.federator_harness import get_json
from tests.helpers.istio import IstioSandbox

T = TypeVar("T")
OUTBOUND = "virtualOutbound"
BLACKHOLE, PASSTHROUGH = "BlackHoleCluster", "PassthroughCluster"


def node_snapshot(
    sb: IstioSandbox, context: str, namespace: str, labels: Mapping[str, str] | None = None
) -> Snapshot:
    """CDS/EDS/LDS/RDS as ``context``'s istiod serves a sidecar in ``namespace``."""
    identity = sb.identity(context, namespace)
    if labels is not None:
        identity = dataclasses.replace(identity, labels=dict(labels))
    return snapshot(address=sb.xds(context), node=sidecar_node(identity))


def catchall_clusters(snap: Snapshot) -> set[str]:
    """Where the outbound listener's catch-all TCP chains send unknown destinations."""
    listener = snap.listeners.get(OUTBOUND)
    if listener is None:
        return set()
    found = set()
    for chain in [*listener.filter_chains, listener.default_filter_chain]:
        if chain.name and not chain.name.endswith("catchall-tcp"):
            continue  # e.g. virtualOutbound-blackhole: traffic to port 15001 itself
        for f in chain.filters:
            if f.typed_config.Is(tcp_proxy_pb2.TcpProxy.DESCRIPTOR):
                proxy = tcp_proxy_pb2.TcpProxy()
                f.typed_config.Unpack(proxy)
                found.add(proxy.cluster)
    return found


def http_catchall_routes(snap: Snapshot) -> set[str]:
    """Clusters of the routes' catch-all virtual hosts (``allow_any`` / ``block_all``)."""
    found: set[str] = set()
    for route in snap.routes.values():
        for host in route.virtual_hosts:
            if host.name in ("allow_any", "block_all"):
                for r in host.routes:
                    found.add(r.route.cluster or f"direct-response-{r.direct_response.status}")
    return found


@dataclass(frozen=True, slots=True)
class RbacRule:
    """One RBAC policy of one inbound filter chain, flattened to what the tests compare."""

    listener: str
    chain: str
    kind: str
    """``http`` (envoy.filters.http.rbac) or ``network`` (envoy.filters.network.rbac)."""
    policy: str
    principals: tuple[str, ...]
    """``exact:<spiffe id>`` or ``prefix:<spiffe id prefix>``."""
    methods: tuple[str, ...]
    paths: tuple[str, ...]
    """``exact:<path>`` or ``prefix:<path>``."""


def _walk(value: Any, key: str) -> list[Any]:
    out = []
    if isinstance(value, dict):
        for k, v in value.items():
            if k == key:
                out.append(v)
            out.extend(_walk(v, key))
    elif isinstance(value, list):
        for v in value:
            out.extend(_walk(v, key))
    return out


def _matches(matchers: list[Any]) -> tuple[str, ...]:
    found = set()
    for matcher in matchers:
        # urlPath: {path: {prefix|exact}}; principalName: {prefix|exact}
        m = matcher.get("path", matcher)
        for kind in ("exact", "prefix", "suffix"):
            if kind in m:
                found.add(f"{kind}:{m[kind]}")
    return tuple(sorted(found))


def _rules(listener: str, chain: str, kind: str, rbac: Any) -> list[RbacRule]:
    policies = MessageToDict(rbac).get("rules", {}).get("policies", {})
    out = []
    for name, policy in sorted(policies.items()):
        methods = [
            h["stringMatch"]["exact"]
            for h in _walk(policy.get("permissions"), "header")
            if h.get("name") == ":method"
        ]
        out.append(
            RbacRule(
                listener=listener,
                chain=chain,
                kind=kind,
                policy=name,
                principals=_matches(_walk(policy.get("principals"), "principalName")),
                methods=tuple(sorted(set(methods))),
                paths=_matches(_walk(policy.get("permissions"), "urlPath")),
            )
        )
    return out


def inbound_rbac(snap: Snapshot) -> list[RbacRule]:
    """Every RBAC policy on the inbound listener ``virtualInbound``: its chain per service port
    (``0.0.0.0_<port>``) and its passthrough chains (``0.0.0.0_<port>`` *listeners* are
    outbound)."""
    out: list[RbacRule] = []
    listener = snap.listeners.get("virtualInbound")
    name = "virtualInbound"
    if listener is not None:
        for chain in listener.filter_chains:
            for f in chain.filters:
                if f.typed_config.Is(network_rbac.RBAC.DESCRIPTOR):
                    msg = network_rbac.RBAC()
                    f.typed_config.Unpack(msg)
                    out.extend(_rules(name, chain.name, "network", msg))
                elif f.typed_config.Is(HttpConnectionManager.DESCRIPTOR):
                    manager = HttpConnectionManager()
                    f.typed_config.Unpack(manager)
                    for hf in manager.http_filters:
                        if hf.typed_config.Is(http_rbac.RBAC.DESCRIPTOR):
                            msg = http_rbac.RBAC()
                            hf.typed_config.Unpack(msg)
                            out.extend(_rules(name, chain.name, "http", msg))
    return out


def wait_xds(what: str, probe: Callable[[], tuple[bool, T]], *, timeout: float = 60.0) -> T:
    """Poll istiod until ``probe`` says yes; fail with the last value (or xDS error)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            ok, last = probe()
            if ok:
                return last  # type: ignore[no-any-return]
        except XdsError as err:
            last = err
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}; last: {last!r}")


def istio_object(sb: IstioSandbox, context: str, kind: str, namespace: str, name: str) -> Any:
    """The object as the apiserver has it (None if absent)."""
    return get_json(sb.kubeconfig, context, kind, name, "-n", namespace)


def owned(sb: IstioSandbox, context: str, kinds: str) -> list[tuple[str, str, str]]:
    """(kind, namespace, name) of the objects meshfed owns of ``kinds`` (kubectl plurals)."""
    got = get_json(
        sb.kubeconfig, context, kinds, "-A", "-l", "app.kubernetes.io/managed-by=meshfed"
    )
    items = (got or {}).get("items", [])
    return sorted((o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]) for o in items)

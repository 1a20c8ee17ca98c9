"""What every sandbox cluster holds once its control plane answers: CRDs, fake nodes and the
east-west gateway.

Applied with the real ``kubectl`` (server-side apply, so re-running ``up`` is a no-op), then
waited on: CRDs Established, nodes Ready (kwok), the default ServiceAccount present (pods of
Deployments are admitted only after it exists). With Istio, the Istio CRDs come from the same
``istio.io/istio`` module as istiod, and the Gateway is left to :mod:`meshfed.sandbox.istio`
(it applies Istio's own sample once istiod validates it).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from meshfed.sandbox.components import Binaries, IstioDist
from meshfed.sandbox.layout import EASTWEST_PORT, ClusterLayout, Topology

NODES_PER_CLUSTER = 2
FIELD_MANAGER = "meshfed-sandbox"
GATEWAY_NAMESPACE = "istio-system"
GATEWAY_SERVICE = "istio-eastwestgateway"


class BootstrapError(RuntimeError):
    """A cluster could not be prepared; the message holds kubectl's own error."""


class Kubectl:
    """The real kubectl bound to one context of the sandbox kubeconfig."""

    def __init__(self, *, binary: Path, kubeconfig: Path, context: str) -> None:
        self._base = [str(binary), f"--kubeconfig={kubeconfig}", f"--context={context}"]
        self.context = context

    def run(self, *args: str, stdin: str | None = None, timeout: float = 120.0) -> str:
        proc = subprocess.run(
            [*self._base, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0:
            raise BootstrapError(
                f"kubectl --context {self.context} {' '.join(args)} failed: {proc.stderr.strip()}"
            )
        return proc.stdout

    def apply(self, documents: Sequence[dict[str, Any]]) -> None:
        self.run(
            "apply",
            "--server-side",
            "--force-conflicts",
            f"--field-manager={FIELD_MANAGER}",
            "-f",
            "-",
            stdin=yaml.safe_dump_all(documents),
        )

    def apply_file(self, path: Path) -> None:
        self.run(
            "apply",
            "--server-side",
            "--force-conflicts",
            f"--field-manager={FIELD_MANAGER}",
            "-f",
            str(path),
        )


def node_manifests(cluster: ClusterLayout) -> list[dict[str, Any]]:
    """Fake nodes kwok manages, labelled with the cluster's region and zone."""
    nodes = []
    for n in range(NODES_PER_CLUSTER):
        name = f"{cluster.name}-node-{n}"
        nodes.append(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "annotations": {
                        "kwok.x-k8s.io/node": "fake",
                        "node.alpha.kubernetes.io/ttl": "0",
                    },
                    "labels": {
                        "kubernetes.io/hostname": name,
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                        "type": "kwok",
                        "topology.kubernetes.io/region": cluster.region,
                        "topology.kubernetes.io/zone": cluster.zone,
                        "topology.istio.io/network": cluster.network,
                    },
                },
                "spec": {
                    "podCIDR": cluster.node_pod_cidr(n),
                    "podCIDRs": [cluster.node_pod_cidr(n)],
                },
            }
        )
    return nodes


def gateway_manifests(
    cluster: ClusterLayout, topology: Topology, *, with_gateway: bool = True
) -> list[dict[str, Any]]:
    """The east-west gateway as Istio installs it: a Service labelled ``istio: eastwestgateway``
    on 15443 (type LoadBalancer), its pods, and (``with_gateway``) the AUTO_PASSTHROUGH Gateway."""
    labels = {
        "istio": "eastwestgateway",
        "app": "istio-eastwestgateway",
        "topology.istio.io/network": cluster.network,
    }
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": GATEWAY_NAMESPACE,
                "labels": {"topology.istio.io/network": cluster.network},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": GATEWAY_SERVICE, "namespace": GATEWAY_NAMESPACE, "labels": labels},
            "spec": {
                "type": "LoadBalancer",
                "selector": {"istio": "eastwestgateway"},
                "ports": [
                    {"name": "status-port", "port": 15021, "targetPort": 15021, "protocol": "TCP"},
                    {
                        "name": "tls",
                        "port": EASTWEST_PORT,
                        "targetPort": EASTWEST_PORT,
                        "protocol": "TCP",
                    },
                ],
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": GATEWAY_SERVICE, "namespace": GATEWAY_NAMESPACE, "labels": labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"istio": "eastwestgateway"}},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [
                            {
                                "name": "istio-proxy",
                                "image": "docker.io/istio/proxyv2:1.24.0",
                                "ports": [{"containerPort": EASTWEST_PORT}],
                            }
                        ]
                    },
                },
            },
        },
    ]
    if topology is Topology.GATEWAY and with_gateway:
        docs.append(
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "Gateway",
                "metadata": {"name": "cross-network-gateway", "namespace": GATEWAY_NAMESPACE},
                "spec": {
                    "selector": {"istio": "eastwestgateway"},
                    "servers": [
                        {
                            "port": {"number": EASTWEST_PORT, "name": "tls", "protocol": "TLS"},
                            "tls": {"mode": "AUTO_PASSTHROUGH"},
                            "hosts": ["*.local"],
                        }
                    ],
                },
            }
        )
    return docs


def _wait(check: Any, *, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except BootstrapError as err:
            last = err
        time.sleep(0.25)
    raise BootstrapError(
        f"timed out after {timeout:.0f}s waiting for {what}" + (f": {last}" if last else "")
    )


def bootstrap_cluster(
    *,
    cluster: ClusterLayout,
    topology: Topology,
    bins: Binaries,
    kubeconfig: Path,
    timeout: float = 120.0,
    istio: IstioDist | None = None,
) -> None:
    """Install CRDs, nodes and the east-west gateway into ``cluster`` and wait until usable."""
    kubectl = Kubectl(binary=bins.kubectl, kubeconfig=kubeconfig, context=cluster.name)
    kubectl.apply_file(istio.crds if istio else bins.istio_crds)
    kubectl.apply_file(bins.mcs_crds)
    kubectl.run("wait", "--for=condition=Established", "crd", "--all", f"--timeout={int(timeout)}s")
    kubectl.apply(node_manifests(cluster))
    kubectl.apply(gateway_manifests(cluster, topology, with_gateway=istio is None))
    status = {"status": {"loadBalancer": {"ingress": [{"ip": cluster.gateway_ip}]}}}
    kubectl.run(
        "patch",
        "service",
        GATEWAY_SERVICE,
        "-n",
        GATEWAY_NAMESPACE,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(status),
    )

    def nodes_ready() -> bool:
        out = json.loads(kubectl.run("get", "nodes", "-o", "json"))
        ready = [
            n
            for n in out["items"]
            if any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in n.get("status", {}).get("conditions", [])
            )
        ]
        return len(ready) >= NODES_PER_CLUSTER

    def default_sa() -> bool:
        out = kubectl.run("get", "serviceaccounts", "-n", "default", "-o", "name")
        return "serviceaccount/default" in out

    _wait(
        nodes_ready,
        what=f"{cluster.name}'s kwok nodes to be Ready (see logs/{cluster.name}-kwok.log)",
        timeout=timeout,
    )
    _wait(
        default_sa,
        what=f"{cluster.name}'s default ServiceAccount "
        f"(see logs/{cluster.name}-kube-controller-manager.log)",
        timeout=timeout,
    )

"""meshfed's output judged by Istio's control plane: what each cluster's istiod serves a
sidecar (EDS and CDS) for a federated service, in both topologies and across changes.

The 3-cluster Istio sandbox: c1 (region-a/region-a-1), c2 (region-a/region-a-2), c3
(region-b/region-b-1); east-west gateways at 127.0.<i>.1:15443. The federator runs as
``meshfed federate``. Waits are bounded; latency figures live in docs/benchmarks.md
(bench/istio_propagation.py), not in asserts.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from meshfed.mesh.views import ClusterView
from tests.helpers.federator_harness import app_docs, apply, kubectl, wait_pods
from tests.helpers.istio import (
    IstioSandbox,
    clusterset_host,
    gateways,
    outbound,
    wait_served,
)

GW = {"c1": "127.0.1.1", "c2": "127.0.2.1", "c3": "127.0.3.1"}
LOCALITY = {"c1": "region-a/region-a-1", "c2": "region-a/region-a-2", "c3": "region-b/region-b-1"}


def _deploy(sb: IstioSandbox, name: str, replicas: dict[str, int], **kw: object) -> None:
    for ctx, n in replicas.items():
        apply(sb.kubeconfig, ctx, app_docs(name, replicas=n, **kw))  # type: ignore[arg-type]


def _remove(sb: IstioSandbox, name: str) -> None:
    for ctx in ("c1", "c2", "c3"):
        kubectl(
            sb.kubeconfig, ctx, "delete", "deployment,service", name,
            "--ignore-not-found", "--wait=false", check=False,
        )  # fmt: skip


@pytest.fixture
def reviews(istio_sandbox: IstioSandbox, mesh_federator: str) -> Iterator[str]:
    """Exported from c1 (2 pods), c2 (1) and c3 (1)."""
    name = "reviews"
    _deploy(istio_sandbox, name, {"c1": 2, "c2": 1, "c3": 1})
    yield name
    _remove(istio_sandbox, name)
    wait_served(
        istio_sandbox, "c3", outbound(clusterset_host(name), 9080), lambda v: v is None,
        what=f"{name} gone after the test",
    )  # fmt: skip


def test_gateway_topology_eds_as_istiod_serves_it(
    istio_sandbox: IstioSandbox, reviews: str
) -> None:
    sb = istio_sandbox
    c3_pods = wait_pods(sb.kubeconfig, "c3", reviews, 1)
    host = clusterset_host(reviews)
    view = wait_served(
        sb, "c3", outbound(host, 9080),
        lambda v: gateways(v) == {GW["c1"]: 2, GW["c2"]: 1}
        and {e.address for e in v.endpoints if e.port == 9080} == c3_pods,  # type: ignore[union-attr]
        what="one endpoint per remote east-west gateway (weights 2 and 1) and c3's own pod",
    )  # fmt: skip
    assert view is not None
    by_address = {e.address: e for e in view.endpoints}
    assert {a: e.locality for a, e in by_address.items()} == {
        GW["c1"]: LOCALITY["c1"],
        GW["c2"]: LOCALITY["c2"],
        **dict.fromkeys(c3_pods, LOCALITY["c3"]),
    }
    # c3's own pods first; region-a (the failover target of region-b) next
    assert {a: e.priority for a, e in by_address.items()} == {
        GW["c1"]: 1,
        GW["c2"]: 1,
        **dict.fromkeys(c3_pods, 0),
    }
    assert view.tls.mode == "ISTIO_MUTUAL"
    assert view.tls.sni == f"outbound_.9080_._.{host}"
    assert view.outlier is not None
    assert view.outlier.consecutive_5xx is not None and view.outlier.interval_s


def test_failover_priorities_follow_region_order(istio_sandbox: IstioSandbox, reviews: str) -> None:
    """From c1: own pods, then c2 (same region, other zone), then c3 (the other region)."""
    sb = istio_sandbox
    c1_pods = wait_pods(sb.kubeconfig, "c1", reviews, 2)

    def ordered(v: ClusterView | None) -> bool:
        return v is not None and {e.address: e.priority for e in v.endpoints} == {
            **dict.fromkeys(c1_pods, 0),
            GW["c2"]: 1,
            GW["c3"]: 2,
        }

    view = wait_served(
        sb, "c1", outbound(clusterset_host(reviews), 9080), ordered,
        what="priorities 0 (c1 pods), 1 (c2 gateway), 2 (c3 gateway)",
    )  # fmt: skip
    assert gateways(view) == {GW["c2"]: 1, GW["c3"]: 1}


def test_vpn_topology_serves_pod_ips_with_target_ports(
    istio_sandbox: IstioSandbox, mesh_federator: str
) -> None:
    sb, name = istio_sandbox, "ratings-vpn"
    try:
        _deploy(
            sb, name, {"c1": 2, "c2": 1}, port=9090,
            annotations={"meshfed.io/topology": "vpn"},
        )  # fmt: skip
        pods = wait_pods(sb.kubeconfig, "c1", name, 2) | wait_pods(sb.kubeconfig, "c2", name, 1)
        view = wait_served(
            sb, "c3", outbound(clusterset_host(name), 9090),
            lambda v: v is not None and {(e.address, e.port) for e in v.endpoints}
            == {(ip, 9090) for ip in pods},
            what="every pod IP of c1 and c2 with its target port",
        )  # fmt: skip
        assert view is not None and not gateways(view)
    finally:
        _remove(sb, name)


def _stop_apiserver(sb: IstioSandbox, context: str, sig: signal.Signals) -> None:
    from meshfed.sandbox import processes  # noqa: PLC0415

    state = processes.load_state(sb.directory)
    assert state is not None
    os.killpg(state.processes[f"{context}/kube-apiserver"].pid, sig)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param("scale", id="scale-c1-to-3"),
        pytest.param("unexport", id="unexport-in-c2"),
        pytest.param("cluster-stop", id="c1-stopped-fail-static"),
    ],
)
def test_changes_reach_istiod(istio_sandbox: IstioSandbox, reviews: str, change: str) -> None:
    sb, kc = istio_sandbox, istio_sandbox.kubeconfig
    cluster = outbound(clusterset_host(reviews), 9080)
    wait_served(
        sb, "c3", cluster, lambda v: gateways(v) == {GW["c1"]: 2, GW["c2"]: 1},
        what="the starting point",
    )  # fmt: skip
    if change == "scale":
        kubectl(kc, "c1", "scale", "deployment", reviews, "--replicas=3")
        want = {GW["c1"]: 3, GW["c2"]: 1}
    elif change == "unexport":
        kubectl(kc, "c2", "label", "service", reviews, "meshfed.io/export-")
        want = {GW["c1"]: 2}
    else:
        _stop_apiserver(sb, "c1", signal.SIGSTOP)
        try:
            # c1 is unreachable: what it exported stays (fail-static) while c2 keeps syncing
            kubectl(kc, "c2", "scale", "deployment", reviews, "--replicas=2")
            want = {GW["c1"]: 2, GW["c2"]: 2}
            wait_served(
                sb, "c3", cluster, lambda v: gateways(v) == want,
                what="c2's new weight next to c1's last-known one", timeout=90,
            )  # fmt: skip
        finally:
            _stop_apiserver(sb, "c1", signal.SIGCONT)
    wait_served(sb, "c3", cluster, lambda v: gateways(v) == want, what=f"after {change}: {want}")

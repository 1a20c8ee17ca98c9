"""Toward a real data plane: c1's east-west gateway and a c3 sidecar as real Envoys
configured by their istiods (pilot-agent from the pinned module, PyPI Envoy 1.40).

What works (docs/istio.md, "Data plane"): both proxies get their certificates from istiod's CA
and accept every cluster and listener istiod sends (no NACK); the gateway listens on 15443 with
one SNI filter chain per service. AUTO_PASSTHROUGH gateways keep only endpoints labelled
``security.istio.io/tlsMode: istio`` (Istio's sidecar-injection label); meshfed writes it on
every ServiceEntry endpoint, so the gateway's SNI cluster for the federated host holds the
exporting cluster's pod, one real mTLS connection goes through the gateway by SNI, and an
HTTP request from the c3 sidecar reaches the backend behind c1's gateway, all from the
objects exactly as meshfed wrote them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers.federator_harness import apply, kubectl, wait_for
from tests.helpers.istio import IstioSandbox, clusterset_host
from tests.helpers.istio_dataplane import Proxy, eastwest_gateway, sidecar
from tests.helpers.istio_workloads import REPLY, MtlsBackend, host_ip, mtls_call, workload_cert

NAME = "reviews-dp"
HOST = clusterset_host(NAME)
SNI_CLUSTER = f"outbound_.9080_._.{HOST}"


@pytest.fixture(scope="module")
def backend(
    istio_sandbox: IstioSandbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MtlsBackend]:
    certs = tmp_path_factory.mktemp("certs")
    server = MtlsBackend(
        address=host_ip(),
        cert=workload_cert(istio_sandbox, "c1", NAME, certs),
        root=istio_sandbox.directory / "pki" / "mesh-root.crt",
    )
    yield server
    server.close()


@pytest.fixture(scope="module")
def exported(
    istio_sandbox: IstioSandbox, mesh_federator: str, backend: MtlsBackend
) -> Iterator[str]:
    """Exported from c1: a Service whose only endpoint is the backend on this host."""
    meta = {"name": NAME, "namespace": "default"}
    apply(
        istio_sandbox.kubeconfig, "c1",
        [
            {
                "apiVersion": "v1", "kind": "Service",
                "metadata": {**meta, "labels": {"meshfed.io/export": "true"}},
                "spec": {"ports": [{"name": "http", "port": 9080, "targetPort": backend.port}]},
            },
            {
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {**meta, "labels": {"kubernetes.io/service-name": NAME}},
                "addressType": "IPv4",
                "ports": [{"name": "http", "port": backend.port, "protocol": "TCP"}],
                "endpoints": [{"addresses": [host_ip()], "conditions": {"ready": True}}],
            },
        ],
    )  # fmt: skip
    yield NAME
    kubectl(
        istio_sandbox.kubeconfig,
        "c1",
        "delete",
        "service,endpointslice",
        NAME,
        "--wait=false",
        check=False,
    )


@pytest.fixture(scope="module")
def gateway(istio_sandbox: IstioSandbox, exported: str) -> Iterator[Proxy]:
    with eastwest_gateway(istio_sandbox, "c1") as gw:
        yield gw


def test_envoy_accepts_everything_istiod_sends(istio_sandbox: IstioSandbox, gateway: Proxy) -> None:
    wait_for("the SNI chain of the federated host", lambda: HOST in _chains(gateway))
    stats = gateway.stats()
    assert stats["cluster_manager.cds.update_success"] >= 1
    assert stats["listener_manager.lds.update_success"] >= 1
    assert stats.get("cluster_manager.cds.update_rejected", 0) == 0
    assert stats.get("listener_manager.lds.update_rejected", 0) == 0
    assert "pilot_total_xds_rejects" not in istio_sandbox.metrics("c1")


def _chains(gateway: Proxy) -> str:
    return httpx.get(
        f"http://{gateway.admin}/config_dump?resource=dynamic_listeners", timeout=5
    ).text


def test_the_gateway_routes_meshfeds_host_as_written(gateway: Proxy, backend: MtlsBackend) -> None:
    wait_for(
        "an endpoint in the gateway's SNI cluster",
        lambda: gateway.endpoints(SNI_CLUSTER) == {f"{host_ip()}:{backend.port}"},
        timeout=15,
    )


def test_one_mtls_connection_through_the_gateway_by_sni(
    istio_sandbox: IstioSandbox, gateway: Proxy, backend: MtlsBackend, tmp_path: Path
) -> None:
    wait_for(
        "the backend in the gateway's SNI cluster",
        lambda: gateway.endpoints(SNI_CLUSTER) == {f"{host_ip()}:{backend.port}"},
    )
    root = istio_sandbox.directory / "pki" / "mesh-root.crt"
    client = workload_cert(istio_sandbox, "c3", "productpage", tmp_path)
    gateway_ip = istio_sandbox.cluster("c1").gateway_ip
    server_id, reply = mtls_call(
        address=(gateway_ip, 15443), sni=SNI_CLUSTER, cert=client, root=root
    )
    assert server_id == f"spiffe://cluster.local/ns/default/sa/{NAME}"
    assert reply == REPLY
    assert ("spiffe://cluster.local/ns/default/sa/productpage", "istio") in backend.peers
    assert gateway.host_stat(SNI_CLUSTER, "cx_total") >= 1


def test_http_from_a_c3_sidecar_through_c1s_gateway(
    istio_sandbox: IstioSandbox, gateway: Proxy, backend: MtlsBackend
) -> None:
    """The whole path as Istio runs it: a real sidecar Envoy in c3, configured by c3's istiod
    from meshfed's ServiceEntry and DestinationRule, with its certificate from c3's istiod,
    opens mTLS by SNI to c1's east-west gateway, which passes it to the backend."""
    wait_for(
        "the backend in the gateway's SNI cluster",
        lambda: gateway.endpoints(SNI_CLUSTER) == {f"{host_ip()}:{backend.port}"},
    )
    bind = "127.0.3.50"
    with sidecar(istio_sandbox, "c3", account="productpage", bind=bind, port=9080) as proxy:
        stats = proxy.stats()
        assert stats.get("listener_manager.lds.update_rejected", 0) == 0
        assert stats.get("cluster_manager.cds.update_rejected", 0) == 0
        gateway_ip = istio_sandbox.cluster("c1").gateway_ip
        assert proxy.endpoints(f"outbound|9080||{HOST}") == {f"{gateway_ip}:15443"}
        reply = httpx.get(f"http://{bind}:9080/", headers={"Host": f"{HOST}:9080"}, timeout=10)
    assert reply.status_code == 200, reply.text
    assert reply.content == REPLY
    # the identity the backend saw is the one c3's istiod issued to the sidecar
    assert reply.headers["x-peer"] == "spiffe://cluster.local/ns/default/sa/productpage"
    assert "pilot_total_xds_rejects" not in istio_sandbox.metrics("c3")

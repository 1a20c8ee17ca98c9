"""The sandbox's istiods as an operator sees them: status, loopback-only listeners, a
least-privilege identity, one mesh root, and ``meshfed mesh inspect`` answering from xDS."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from meshfed.sandbox import processes
from tests.helpers.federator_harness import app_docs, apply, get_json, kubectl
from tests.helpers.istio import (
    MESHFED,
    IstioSandbox,
    clusterset_host,
    gateways,
    outbound,
    wait_served,
)

CONTEXTS = ("c1", "c2", "c3")
ISTIOD = "system:serviceaccount:istio-system:istiod"


def test_status_json_lists_each_istiod(istio_sandbox: IstioSandbox) -> None:
    out = subprocess.run(
        [MESHFED, "sandbox", "status", "--dir", str(istio_sandbox.directory), "--json"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr + out.stdout
    doc = json.loads(out.stdout)
    assert [c["name"] for c in doc["clusters"]] == list(CONTEXTS)
    for c in doc["clusters"]:
        assert c["istiod"]["xds"] == istio_sandbox.xds(c["name"])
        assert c["istiod"]["ready"] is True
        assert c["istiod"]["rss_bytes"] > 0


def _listening(pid: int) -> set[tuple[str, int]]:
    """(address, port) of the TCP sockets ``pid`` listens on (IPv4 and IPv6 tables)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = str(fd.readlink())
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:
                host, port = fields[1].rsplit(":", 1)
                found.add((host, int(port, 16)))
    return found


@pytest.mark.parametrize("context", [pytest.param(c, id=c) for c in CONTEXTS])
def test_istiod_listens_on_loopback_only_on_its_own_ports(
    istio_sandbox: IstioSandbox, context: str
) -> None:
    state = processes.load_state(istio_sandbox.directory)
    assert state is not None
    sockets = _listening(state.processes[f"{context}/istiod"].pid)
    assert {port for _, port in sockets} == set(istio_sandbox.cluster(context).istiod.all)
    assert {host for host, _ in sockets} == {"0100007F"}, "a listener not on 127.0.0.1"


@pytest.mark.parametrize(
    ("verb", "resource", "allowed"),
    [
        pytest.param("list", "endpointslices.discovery.k8s.io", "yes", id="reads-endpointslices"),
        pytest.param("watch", "serviceentries.networking.istio.io", "yes", id="reads-istio"),
        pytest.param("create", "deployments.apps", "no", id="no-deployments"),
        pytest.param("create", "serviceexports.multicluster.x-k8s.io", "no", id="no-exports"),
        pytest.param("delete", "services", "no", id="no-service-deletes"),
        pytest.param("create", "serviceentries.networking.istio.io", "no", id="no-istio-writes"),
    ],
)
def test_istiod_identity_is_least_privilege(
    istio_sandbox: IstioSandbox, verb: str, resource: str, allowed: str
) -> None:
    out = kubectl(
        istio_sandbox.kubeconfig, "c1", "auth", "can-i", verb, resource, "-A", f"--as={ISTIOD}",
        check=False,
    )  # fmt: skip
    assert out.stdout.strip() == allowed, out.stdout + out.stderr


def test_one_mesh_root_in_every_cluster(istio_sandbox: IstioSandbox) -> None:
    root = (istio_sandbox.directory / "pki" / "mesh-root.crt").read_text()
    for ctx in CONTEXTS:
        cm = get_json(
            istio_sandbox.kubeconfig, ctx, "configmap", "istio-ca-root-cert", "-n", "default"
        )
        assert cm is not None, f"istiod of {ctx} did not publish istio-ca-root-cert"
        assert cm["data"]["root-cert.pem"].strip() == root.strip()


def test_mesh_inspect_prints_gateway_endpoints_with_weights(
    istio_sandbox: IstioSandbox, mesh_federator: str
) -> None:
    sb, name = istio_sandbox, "productpage"
    try:
        apply(sb.kubeconfig, "c1", app_docs(name, replicas=2))
        apply(sb.kubeconfig, "c2", app_docs(name, replicas=1))
        wait_served(
            sb, "c3", outbound(clusterset_host(name), 9080),
            lambda v: gateways(v) == {"127.0.1.1": 2, "127.0.2.1": 1}, what="productpage",
        )  # fmt: skip
        out = subprocess.run(
            [MESHFED, "mesh", "inspect", "--dir", str(sb.directory), "--context", "c3",
             "--service", f"{name}.default"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert f"outbound|9080||{clusterset_host(name)}" in out.stdout
        assert any("127.0.1.1:15443  weight 2  locality region-a/region-a-1" in x for x in lines)
        assert any("127.0.2.1:15443  weight 1  locality region-a/region-a-2" in x for x in lines)
        assert "tls ISTIO_MUTUAL" in out.stdout
    finally:
        for ctx in ("c1", "c2"):
            kubectl(
                sb.kubeconfig,
                ctx,
                "delete",
                "deployment,service",
                name,
                "--wait=false",
                check=False,
            )


def test_up_again_keeps_istio_and_restarts_nothing(istio_sandbox: IstioSandbox) -> None:
    before = processes.load_state(istio_sandbox.directory)
    assert before is not None
    # without --istio: a sandbox that has Istio keeps it
    layout = istio_sandbox.sandbox.up(clusters=3, base_port=istio_sandbox.layout.base_port)
    after = processes.load_state(istio_sandbox.directory)
    assert after is not None and after.istio and layout.istio
    assert {k: v.pid for k, v in after.processes.items()} == {
        k: v.pid for k, v in before.processes.items()
    }
    hook = get_json(
        istio_sandbox.kubeconfig,
        "c1",
        "validatingwebhookconfigurations",
        "istiod-default-validator",
    )
    assert hook["webhooks"][0]["failurePolicy"] == "Fail"

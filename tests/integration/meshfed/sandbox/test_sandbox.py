"""The sandbox's acceptance: real apiservers with real CRD validation, RBAC and controllers."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from meshfed.sandbox import processes
from meshfed.sandbox.components import find_binaries
from meshfed.sandbox.layout import Topology
from meshfed.sandbox.manager import Sandbox
from tests.helpers.sandbox import RunningSandbox

CLUSTERS = ["c1", "c2", "c3"]


def kubectl(
    sb: RunningSandbox, context: str, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(find_binaries().kubectl),
            f"--kubeconfig={sb.kubeconfig}",
            f"--context={context}",
            *args,
        ],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def api(sb: RunningSandbox, context: str) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(sb.kubeconfig), context=context)


@pytest.mark.parametrize("context", [pytest.param(c, id=c) for c in CLUSTERS])
@pytest.mark.parametrize(
    "crd",
    [
        pytest.param("serviceentries.networking.istio.io", id="serviceentries"),
        pytest.param("destinationrules.networking.istio.io", id="destinationrules"),
        pytest.param("virtualservices.networking.istio.io", id="virtualservices"),
        pytest.param("peerauthentications.security.istio.io", id="peerauthentications"),
        pytest.param("telemetries.telemetry.istio.io", id="telemetries"),
        pytest.param("serviceexports.multicluster.x-k8s.io", id="serviceexports"),
        pytest.param("serviceimports.multicluster.x-k8s.io", id="serviceimports"),
    ],
)
def test_crds_are_established(sandbox: RunningSandbox, context: str, crd: str) -> None:
    ext = client.ApiextensionsV1Api(api(sandbox, context))
    conditions = {
        c.type: c.status for c in ext.read_custom_resource_definition(crd).status.conditions
    }
    assert conditions.get("Established") == "True"


@pytest.mark.parametrize(
    ("spec", "complaint"),
    [
        pytest.param({"hosts": ["a.example"], "ports": "x"}, "spec.ports", id="ports-not-a-list"),
        pytest.param(
            {
                "hosts": ["a.example"],
                "ports": [{"number": "eighty", "name": "http", "protocol": "HTTP"}],
            },
            "number",
            id="port-number-not-int",
        ),
        pytest.param({"hosts": ["a.example"], "location": "NOWHERE"}, "location", id="bad-enum"),
    ],
)
def test_apiserver_rejects_invalid_serviceentry(
    sandbox: RunningSandbox, spec: dict[str, Any], complaint: str
) -> None:
    se = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": "bad", "namespace": "default"},
        "spec": spec,
    }
    custom = client.CustomObjectsApi(api(sandbox, "c2"))
    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object(
            "networking.istio.io", "v1", "default", "serviceentries", se
        )
    assert err.value.status == 422
    assert complaint in err.value.body


def test_valid_serviceentry_is_accepted(sandbox: RunningSandbox) -> None:
    se = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": "ok", "namespace": "default"},
        "spec": {
            "hosts": ["ok.default.svc.clusterset.local"],
            "location": "MESH_INTERNAL",
            "resolution": "STATIC",
            "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}],
            "endpoints": [
                {"address": "10.1.0.5", "ports": {"http": 8080}, "locality": "region-a/region-a-1"}
            ],
        },
    }
    custom = client.CustomObjectsApi(api(sandbox, "c1"))
    created = custom.create_namespaced_custom_object(
        "networking.istio.io", "v1", "default", "serviceentries", se
    )
    try:
        assert created["spec"]["endpoints"][0]["address"] == "10.1.0.5"
    finally:
        custom.delete_namespaced_custom_object(
            "networking.istio.io", "v1", "default", "serviceentries", "ok"
        )


@pytest.fixture
def demo_app(sandbox: RunningSandbox) -> Iterator[str]:
    """A Deployment with 2 replicas and its Service in c2."""
    name = "reviews-sandbox-test"
    labels = {"app": name}
    docs = [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [
                            {
                                "name": "app",
                                "image": "example/reviews:1",
                                "ports": [{"containerPort": 9080}],
                            }
                        ]
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "selector": labels,
                "ports": [{"name": "http", "port": 9080, "targetPort": 9080}],
            },
        },
    ]
    out = kubectl(sandbox, "c2", "apply", "-f", "-", stdin=yaml.safe_dump_all(docs))
    assert out.returncode == 0, out.stderr
    yield name
    kubectl(sandbox, "c2", "delete", "deployment,service", name, "--wait=false")


def test_deployment_gets_endpointslice_with_ready_pod_ips(
    sandbox: RunningSandbox, demo_app: str
) -> None:
    discovery = client.DiscoveryV1Api(api(sandbox, "c2"))
    pod_cidr = ipaddress.ip_network(sandbox.layout.clusters[1].pod_cidr)
    deadline = time.monotonic() + 10
    ready: list[str] = []
    while time.monotonic() < deadline:
        slices = discovery.list_namespaced_endpoint_slice(
            "default", label_selector=f"kubernetes.io/service-name={demo_app}"
        ).items
        ready = [
            addr
            for s in slices
            for ep in (s.endpoints or [])
            if ep.conditions and ep.conditions.ready
            for addr in ep.addresses
        ]
        if len(ready) == 2:
            break
        time.sleep(0.2)
    assert len(ready) == 2, f"EndpointSlice ready addresses after 10s: {ready}"
    assert all(ipaddress.ip_address(a) in pod_cidr for a in ready), (ready, pod_cidr)


def test_serviceaccount_without_bindings_is_forbidden(sandbox: RunningSandbox) -> None:
    out = kubectl(sandbox, "c3", "create", "serviceaccount", "nobody", "-n", "default")
    assert out.returncode == 0 or "AlreadyExists" in out.stderr, out.stderr
    token = kubectl(sandbox, "c3", "create", "token", "nobody", "-n", "default").stdout.strip()
    assert token
    cfg = client.Configuration()
    admin = api(sandbox, "c3").configuration
    cfg.host, cfg.ssl_ca_cert = admin.host, admin.ssl_ca_cert
    cfg.api_key = {"authorization": f"Bearer {token}"}
    core = client.CoreV1Api(client.ApiClient(cfg))
    with pytest.raises(ApiException) as err:
        core.list_namespaced_service("default")
    assert err.value.status == 403
    # authenticated as that service account: RBAC, not authentication, refused it
    assert "system:serviceaccount:default:nobody" in err.value.body


@pytest.mark.parametrize("cluster", [pytest.param(i, id=f"c{i}") for i in (1, 2, 3)])
def test_eastwest_gateway_has_loopback_loadbalancer_ip(
    sandbox: RunningSandbox, cluster: int
) -> None:
    core = client.CoreV1Api(api(sandbox, f"c{cluster}"))
    svc = core.read_namespaced_service("istio-eastwestgateway", "istio-system")
    assert svc.metadata.labels["istio"] == "eastwestgateway"
    assert svc.metadata.labels["topology.istio.io/network"] == f"network-c{cluster}"
    assert [p.port for p in svc.spec.ports if p.name == "tls"] == [15443]
    assert svc.status.load_balancer.ingress[0].ip == f"127.0.{cluster}.1"


def test_kubectl_contexts_and_federation_config(sandbox: RunningSandbox) -> None:
    for ctx in CLUSTERS:
        out = kubectl(sandbox, ctx, "get", "ns", "-o", "name")
        assert "namespace/istio-system" in out.stdout, out.stderr
    fed = yaml.safe_load((sandbox.directory / "federation.yaml").read_text())
    assert [c["name"] for c in fed["clusters"]] == CLUSTERS
    assert {c["region"] for c in fed["clusters"]} == {"region-a", "region-b"}
    assert fed["topology"] == "gateway"


def test_pod_and_service_cidrs_are_distinct(sandbox: RunningSandbox) -> None:
    nets = [ipaddress.ip_network(c.pod_cidr) for c in sandbox.layout.clusters]
    nets += [ipaddress.ip_network(c.service_cidr) for c in sandbox.layout.clusters]
    assert not any(a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1 :])


def test_up_again_is_idempotent(sandbox: RunningSandbox) -> None:
    before = json.loads((sandbox.directory / processes.STATE_FILE).read_text())["processes"]
    sandbox.sandbox.up(clusters=3, base_port=sandbox.layout.base_port)
    after = json.loads((sandbox.directory / processes.STATE_FILE).read_text())["processes"]
    assert {k: v["pid"] for k, v in after.items()} == {k: v["pid"] for k, v in before.items()}


def _listening_sockets() -> dict[int, int]:
    """Socket inode -> port for every TCP socket in LISTEN state on this machine."""
    found = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # TCP_LISTEN
                found[int(fields[9])] = int(fields[1].rsplit(":", 1)[1], 16)
    return found


def _group_members(pgids: set[int]) -> set[int]:
    """PIDs of every running process in the given process groups (children included)."""
    members = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields[0] is the state (field 3 of /proc/pid/stat), fields[2] the process group
        if int(fields[2]) in pgids and fields[0] not in ("Z", "X"):
            members.add(int(stat.parent.name))
    return members


def _ports_of(pids: set[int]) -> set[int]:
    """TCP ports the given processes listen on, found through their socket inodes."""
    listening = _listening_sockets()
    ports = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").glob("*"):
            try:
                target = str(fd.readlink())
            except OSError:
                continue
            if target.startswith("socket:["):
                inode = int(target[8:-1])
                if inode in listening:
                    ports.add(listening[inode])
    return ports


@pytest.mark.parametrize(
    ("istio", "base_port"),
    [pytest.param(False, 24000, id="kubernetes"), pytest.param(True, 24100, id="with-istiod")],
)
def test_down_leaves_no_process_and_no_listening_port(
    tmp_path: Path, istio: bool, base_port: int
) -> None:
    sb = Sandbox(tmp_path / "sb")
    layout = sb.up(clusters=1, topology=Topology.VPN, base_port=base_port, istio=istio)
    state = processes.load_state(sb.directory)
    assert state is not None
    records = list(state.processes.values())
    assert all(processes.is_alive(r) for r in records)
    assert ("c1/istiod" in state.processes) is istio
    members = _group_members({r.pid for r in records})
    sandbox_ports = _ports_of(members)
    assert {layout.etcd_client_port, layout.clusters[0].apiserver_port} <= sandbox_ports
    if istio:
        assert set(layout.clusters[0].istiod.all) <= sandbox_ports
    assert sb.down() == []
    assert not any(processes.is_alive(r) for r in records)
    assert not _group_members({r.pid for r in records}), "processes left in sandbox groups"
    assert not sandbox_ports & set(_listening_sockets().values()), "sandbox ports still listening"
    assert processes.load_state(sb.directory) is None

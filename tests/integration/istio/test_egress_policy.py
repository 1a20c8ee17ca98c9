"""The federated egress allow-list judged by istiod: REGISTRY_ONLY sidecars that see the allowed
hosts only, send unknown destinations to the BlackHole cluster, still reach federated and
in-mesh services, leave a user's own default Sidecar alone, and are pruned with the config.

``meshfed federate`` runs over the 3-cluster Istio sandbox with an ``egress`` section (the
``federate_runner`` fixture, restored afterwards); istiod's validating webhook is fail-closed,
so every object that exists was accepted by Istio's validation.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
import yaml

from federator.api._generated.meshfed.v1 import federation_pb2 as pb
from federator.api._generated.meshfed.v1 import federation_pb2_grpc as pb_grpc
from federator.core.render_policy import egress_object_name
from meshfed.mesh.views import cluster_view
from tests.helpers.federator_harness import app_docs, apply, kubectl
from tests.helpers.istio import (
    MESHFED,
    FederateRunner,
    IstioSandbox,
    clusterset_host,
    gateways,
    outbound,
)
from tests.helpers.istio_policy import (
    BLACKHOLE,
    PASSTHROUGH,
    catchall_clusters,
    http_catchall_routes,
    istio_object,
    node_snapshot,
    owned,
    wait_xds,
)

CONTEXTS = ("c1", "c2", "c3")
SHOP, LEGACY, APP = "egress-shop", "egress-legacy", "ratings-egress"
HOST, SHOP_HOST, LEGACY_HOST = "allowed.example.com", "api.example.org", "legacy.example.com"
EGRESS = {
    "allow": [
        {"host": HOST, "ports": [443], "protocol": "TLS"},
        {"host": SHOP_HOST, "ports": [{"number": 80, "protocol": "HTTP"}], "namespaces": [SHOP]},
        {"host": LEGACY_HOST, "ports": [443], "namespaces": [LEGACY]},
    ]
}
USER_SIDECAR = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "Sidecar",
    "metadata": {"name": "default", "namespace": LEGACY},
    "spec": {"egress": [{"hosts": ["./*", "istio-system/*"]}]},
}
EGRESS_OBJECTS = {
    ("ServiceEntry", "istio-system", egress_object_name(HOST)),
    ("Sidecar", "istio-system", "meshfed-egress"),
    ("ServiceEntry", SHOP, egress_object_name(SHOP_HOST)),
    ("Sidecar", SHOP, "meshfed-egress"),
}


@pytest.fixture(scope="module")
def egress(istio_sandbox: IstioSandbox, federate_runner: FederateRunner) -> Iterator[IstioSandbox]:
    """egress-shop in every cluster, egress-legacy (with a user's default Sidecar) in c2, an
    exported app in c1; the federator running with ``EGRESS``."""
    sb, kc = istio_sandbox, istio_sandbox.kubeconfig
    for ctx in CONTEXTS:
        kubectl(kc, ctx, "create", "namespace", SHOP, check=False)
    kubectl(kc, "c2", "create", "namespace", LEGACY, check=False)
    apply(kc, "c2", [USER_SIDECAR])
    apply(kc, "c1", app_docs(APP, replicas=1))
    try:
        with federate_runner.configured({"egress": EGRESS}):
            yield sb
    finally:
        kubectl(kc, "c1", "delete", "deployment,service", APP, "--wait=false", check=False)
        for ctx in CONTEXTS:
            kubectl(kc, ctx, "delete", "namespace", SHOP, LEGACY, "--ignore-not-found",
                    "--wait=false", check=False)  # fmt: skip


@pytest.mark.parametrize("context", [pytest.param(c, id=c) for c in CONTEXTS])
def test_egress_objects_written_and_accepted_by_istio(egress: IstioSandbox, context: str) -> None:
    def present() -> tuple[bool, Any]:
        got = set(owned(egress, context, "serviceentries,sidecars"))
        return got >= EGRESS_OBJECTS, got

    wait_xds(f"the egress objects in {context}", present)
    for kind, namespace, name in sorted(EGRESS_OBJECTS):
        plural = {"ServiceEntry": "serviceentries", "Sidecar": "sidecars"}[kind]
        obj = istio_object(egress, context, f"{plural}.networking.istio.io", namespace, name)
        for key in ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"):
            obj["metadata"].pop(key, None)
        out = kubectl(
            egress.kubeconfig, context, "apply", "--dry-run=server", "--server-side",
            "--field-manager=conformance", "-f", "-", stdin=json.dumps(obj), check=False,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr  # istiod's webhook validated it again


@pytest.mark.parametrize(
    ("namespace", "allowed", "not_allowed"),
    [
        pytest.param("default", {HOST}, {SHOP_HOST, LEGACY_HOST}, id="mesh-wide-only"),
        pytest.param(SHOP, {HOST, SHOP_HOST}, {LEGACY_HOST}, id="namespace-entries-too"),
    ],
)
def test_sidecar_sees_allowed_hosts_only_and_unknown_go_to_blackhole(
    egress: IstioSandbox, namespace: str, allowed: set[str], not_allowed: set[str]
) -> None:
    ports = {HOST: 443, SHOP_HOST: 80, LEGACY_HOST: 443}

    def registry_only() -> tuple[bool, Any]:
        snap = node_snapshot(egress, "c3", namespace)
        external = {h for h in ports if outbound(h, ports[h]) in snap.clusters}
        return external == allowed and catchall_clusters(snap) == {BLACKHOLE}, snap

    snap = wait_xds(f"REGISTRY_ONLY egress for a sidecar in {namespace}", registry_only)
    assert not {outbound(h, ports[h]) for h in not_allowed} & set(snap.clusters)
    routes = http_catchall_routes(snap)
    assert PASSTHROUGH not in routes, routes
    if namespace == SHOP:  # the HTTP host has a port-80 route; anything else there is refused
        assert routes == {"direct-response-502"}, routes


@pytest.mark.parametrize("namespace", [pytest.param(n, id=n) for n in ("default", SHOP)])
def test_federated_and_in_mesh_services_stay_reachable(
    egress: IstioSandbox, namespace: str
) -> None:
    """``*/*`` egress hosts: the clusterset.local ServiceEntry (in ``default``, exported to all)
    and in-mesh Services of other namespaces keep their clusters under REGISTRY_ONLY."""
    federated = outbound(clusterset_host(APP), 9080)

    def reachable() -> tuple[bool, Any]:
        snap = node_snapshot(egress, "c3", namespace)
        found = snap.clusters.get(federated)
        view = None if found is None else cluster_view(found, snap.endpoints.get(federated))
        ok = catchall_clusters(snap) == {BLACKHOLE} and gateways(view) == {"127.0.1.1": 1}
        return ok, snap

    snap = wait_xds(f"{APP} federated from c1 under REGISTRY_ONLY", reachable)
    assert outbound("kubernetes.default.svc.cluster.local", 443) in snap.clusters


def test_user_default_sidecar_is_left_alone_and_reported(
    egress: IstioSandbox, federate_runner: FederateRunner
) -> None:
    def entry_written() -> tuple[bool, Any]:
        got = owned(egress, "c2", "serviceentries,sidecars")
        return ("ServiceEntry", LEGACY, egress_object_name(LEGACY_HOST)) in got, got

    got = wait_xds("the legacy namespace's ServiceEntry", entry_written)
    assert ("Sidecar", LEGACY, "meshfed-egress") not in got
    user = istio_object(egress, "c2", "sidecars.networking.istio.io", LEGACY, "default")
    assert user["spec"] == USER_SIDECAR["spec"]
    assert "outboundTrafficPolicy" not in user["spec"]
    with grpc.insecure_channel(federate_runner.grpc) as channel:
        stub = pb_grpc.FederationServiceStub(channel)
        reply = stub.GetService(
            pb.GetServiceRequest(key=pb.ServiceKey(namespace=LEGACY, name="egress.meshfed")),
            timeout=10,
        )
    conditions = [(c.reason_text, c.cluster) for c in reply.service.conditions]
    assert conditions == [("Refused", "c2")]
    assert f"Sidecar {LEGACY}/default (not meshfed's)" in reply.service.conditions[0].message


def test_meshfed_plan_shows_egress_changes(
    egress: IstioSandbox, federate_runner: FederateRunner, tmp_path: Any
) -> None:
    doc = yaml.safe_load((egress.directory / "federation-test.yaml").read_text())
    doc["egress"]["allow"].append({"host": "new.example.com", "ports": [8443]})
    config = tmp_path / "federation.yaml"
    config.write_text(yaml.safe_dump(doc))
    out = subprocess.run(
        [MESHFED, "plan", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 2, out.stdout + out.stderr  # 2: there are changes
    name = egress_object_name("new.example.com")
    for ctx in CONTEXTS:
        assert f"cluster {ctx}: 1 to create, 0 to update, 0 to delete" in out.stdout, out.stdout
    assert out.stdout.count(f"+ create ServiceEntry istio-system/{name}") == 3
    assert "location: MESH_EXTERNAL" in out.stdout


def test_removed_entries_are_pruned_and_passthrough_returns(
    egress: IstioSandbox, federate_runner: FederateRunner
) -> None:
    federate_runner.ensure({})  # the same federation without its egress section

    def pruned() -> tuple[bool, Any]:
        left = {ctx: owned(egress, ctx, "sidecars") for ctx in CONTEXTS}
        left |= {
            f"{ctx}-se": [
                o
                for o in owned(egress, ctx, "serviceentries")
                if o[2].startswith("meshfed-egress-")
            ]
            for ctx in CONTEXTS
        }
        return not any(left.values()), left

    wait_xds("every egress object pruned", pruned)

    def passthrough() -> tuple[bool, Any]:
        snap = node_snapshot(egress, "c3", "default")
        ok = catchall_clusters(snap) == {PASSTHROUGH} and outbound(HOST, 443) not in snap.clusters
        return ok, sorted(snap.clusters)

    wait_xds("ALLOW_ANY again and no cluster for the removed host", passthrough)
    user = istio_object(egress, "c2", "sidecars.networking.istio.io", LEGACY, "default")
    assert user is not None and user["spec"] == USER_SIDECAR["spec"]

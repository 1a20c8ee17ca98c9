"""What ``up --istio`` gives each istiod: least-privilege RBAC, the base chart's webhook with a
loopback URL, a mesh config for stock Envoy, loopback listeners on the cluster's ports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from meshfed.sandbox.istio_manifests import (
    cluster_rules,
    identity_manifests,
    istiod_argv,
    istiod_env,
    mesh_config,
    namespace_rules,
    validating_webhook,
)
from meshfed.sandbox.layout import plan_layout

LAYOUT = plan_layout(directory=Path("sb"), clusters=3, base_port=25000, istio=True)
C2 = LAYOUT.clusters[1]


def _allows(rules: list[dict[str, Any]], verb: str, group: str, resource: str) -> bool:
    return any(
        group in r["apiGroups"]
        and (resource in r["resources"] or "*" in r["resources"])
        and verb in r["verbs"]
        for r in rules
    )


@pytest.mark.parametrize(
    ("verb", "group", "resource", "allowed"),
    [
        pytest.param("watch", "discovery.k8s.io", "endpointslices", True, id="watch-slices"),
        pytest.param("list", "networking.istio.io", "serviceentries", True, id="list-istio"),
        pytest.param("update", "", "configmaps", True, id="root-cert-configmaps"),
        pytest.param("create", "authentication.k8s.io", "tokenreviews", True, id="tokenreviews"),
        pytest.param("create", "apps", "deployments", False, id="no-deployments"),
        pytest.param("create", "multicluster.x-k8s.io", "serviceexports", False, id="no-export"),
        pytest.param("delete", "multicluster.x-k8s.io", "serviceexports", False, id="no-unexport"),
        pytest.param("create", "networking.istio.io", "serviceentries", False, id="no-se-write"),
        pytest.param(
            "create", "certificates.k8s.io", "certificatesigningrequests", False, id="no-csr"
        ),
        pytest.param("update", "", "secrets", False, id="no-cluster-secret-writes"),
    ],
)
def test_cluster_rules(verb: str, group: str, resource: str, allowed: bool) -> None:
    assert _allows(cluster_rules(), verb, group, resource) is allowed


def test_namespace_rules_allow_the_webhook_dry_run_and_leases() -> None:
    rules = namespace_rules()
    assert _allows(rules, "create", "networking.istio.io", "gateways")
    assert _allows(rules, "update", "coordination.k8s.io", "leases")


def test_identity_is_a_service_account_token_bound_to_both_roles() -> None:
    docs = {d["kind"]: d for d in identity_manifests()}
    assert docs["Secret"]["type"] == "kubernetes.io/service-account-token"
    assert docs["Secret"]["metadata"]["annotations"] == {
        "kubernetes.io/service-account.name": "istiod"
    }
    for binding in ("ClusterRoleBinding", "RoleBinding"):
        assert docs[binding]["subjects"] == [
            {"kind": "ServiceAccount", "name": "istiod", "namespace": "istio-system"}
        ]


def test_webhook_is_the_base_charts_with_a_loopback_url() -> None:
    hook = validating_webhook(C2)
    assert hook["metadata"]["name"] == "istiod-default-validator"
    assert hook["metadata"]["labels"]["istio.io/rev"] == "default"
    (webhook,) = hook["webhooks"]
    assert webhook["clientConfig"] == {"url": f"https://127.0.0.1:{C2.istiod.https}/validate"}
    assert webhook["failurePolicy"] == "Ignore", "istiod itself turns it to Fail when ready"
    assert set(webhook["rules"][0]["apiGroups"]) >= {"networking.istio.io", "security.istio.io"}


def test_mesh_config_has_no_istio_only_filters() -> None:
    mesh = mesh_config(C2)
    assert mesh["defaultProviders"] == {"metrics": []}
    assert mesh["defaultConfig"]["discoveryAddress"] == f"127.0.0.1:{C2.istiod.secure_grpc}"


def test_every_listener_is_on_loopback_at_the_clusters_ports() -> None:
    argv = istiod_argv(
        binary=Path("pilot-discovery"), cluster=C2, kubeconfig=Path("k"), mesh=Path("m"),
        networks=Path("n"), serving_cert=Path("c"), serving_key=Path("k"), root_cert=Path("r"),
    )  # fmt: skip
    addresses = {a.split("=", 1)[1] for a in argv if a.split("=")[0].endswith("Addr")}
    assert addresses == {f"127.0.0.1:{p}" for p in C2.istiod.all if p != C2.istiod.ctrlz}
    assert f"--ctrlz_port={C2.istiod.ctrlz}" in argv
    assert "--ctrlz_address=127.0.0.1" in argv
    assert "--clusterID=c2" in argv


def test_env_points_the_plug_in_ca_at_the_sandbox_not_the_working_directory() -> None:
    env = istiod_env(cluster=C2, cacerts_dir=Path("/sb/c2/istiod/cacerts"))
    assert env["ROOT_CA_DIR"] == "/sb/c2/istiod/cacerts"
    assert env["POD_NAMESPACE"] == "istio-system"
    assert env["PILOT_ENABLE_METADATA_EXCHANGE"] == "false"
    assert env["PILOT_ENABLE_ALPN_FILTER"] == "false"

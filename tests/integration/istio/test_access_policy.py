"""Cross-cluster access policy judged by istiod: the AuthorizationPolicy meshfed writes in every
exporting cluster becomes the RBAC filter of the service's inbound listener (HTTP RBAC with
principals, methods and paths; network RBAC for a TCP port), nowhere else; bad policy input is
refused before anything is written; a removed policy is pruned.

``meshfed federate`` runs over the 3-cluster Istio sandbox with an ``access`` section (the
``federate_runner`` fixture, restored afterwards). All sandbox clusters use the trust domain
``cluster.local`` (the sandbox's meshConfig), so principals read ``spiffe://cluster.local/...``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers.federator_harness import app_docs, apply, kubectl
from tests.helpers.istio import MESHFED, FederateRunner, IstioSandbox
from tests.helpers.istio_policy import (
    RbacRule,
    inbound_rbac,
    istio_object,
    node_snapshot,
    owned,
    wait_xds,
)
from tests.helpers.processes import free_port

CONTEXTS = ("c1", "c2", "c3")
WEB, DB = "details-authz", "db-authz"
ACCESS = [
    {
        "service": f"default/{WEB}",
        "rules": [
            {
                "from": [{"namespaces": ["shop"], "serviceAccounts": ["frontend"]}],
                "to": [{"methods": ["GET", "HEAD"], "paths": ["/api/*", "/healthz"]}],
            },
            {"from": [{"clusters": ["c1", "c2", "c3"], "namespaces": ["ops"]}]},
        ],
    },
    {"service": f"default/{DB}", "rules": [{"from": [{"namespaces": ["billing"]}]}]},
]
WEB_POLICY = "ns[default]-policy[meshfed-access-details-authz]"
DB_POLICY = "ns[default]-policy[meshfed-access-db-authz]"


@pytest.fixture(scope="module")
def access(istio_sandbox: IstioSandbox, federate_runner: FederateRunner) -> Iterator[IstioSandbox]:
    """details-authz (HTTP) exported from c1 and c2, db-authz (TCP) from c1; the federator
    running with ``ACCESS``."""
    sb, kc = istio_sandbox, istio_sandbox.kubeconfig
    for ctx in ("c1", "c2"):
        apply(kc, ctx, app_docs(WEB, replicas=1))
    apply(kc, "c1", app_docs(DB, replicas=1, port=5432, port_name="tcp"))
    try:
        with federate_runner.configured({"access": ACCESS}):
            yield sb
    finally:
        for ctx in ("c1", "c2"):
            kubectl(kc, ctx, "delete", "deployment,service", WEB, DB, "--ignore-not-found",
                    "--wait=false", check=False)  # fmt: skip


def _policies(sb: IstioSandbox, ctx: str) -> list[tuple[str, str, str]]:
    return owned(sb, ctx, "authorizationpolicies.security.istio.io")


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        pytest.param("c1", [f"meshfed-access-{DB}", f"meshfed-access-{WEB}"], id="c1-exports-both"),
        pytest.param("c2", [f"meshfed-access-{WEB}"], id="c2-exports-web"),
        pytest.param("c3", [], id="c3-exports-nothing"),
    ],
)
def test_policies_only_in_exporting_clusters(
    access: IstioSandbox, context: str, expected: list[str]
) -> None:
    def written() -> tuple[bool, Any]:
        got = [name for _, _, name in _policies(access, context)]
        return got == expected and (bool(expected) or _policies(access, "c2") != []), got

    wait_xds(f"the access policies of {context}", written)
    for name in expected:
        obj = access_policy(access, context, name)
        app = name.removeprefix("meshfed-access-")
        assert obj["spec"]["selector"] == {"matchLabels": {"app": app}}
        assert obj["spec"]["action"] == "ALLOW"


def access_policy(sb: IstioSandbox, context: str, name: str) -> Any:
    return istio_object(sb, context, "authorizationpolicies.security.istio.io", "default", name)


def _rules(sb: IstioSandbox, ctx: str, app: str, policy: str) -> list[RbacRule]:
    snap = node_snapshot(sb, ctx, "default", {"app": app})
    return [r for r in inbound_rbac(snap) if r.policy.startswith(policy)]


@pytest.mark.parametrize("context", [pytest.param(c, id=c) for c in ("c1", "c2")])
def test_http_inbound_listener_enforces_principals_methods_and_paths(
    access: IstioSandbox, context: str
) -> None:
    def enforced() -> tuple[bool, Any]:
        rules = _rules(access, context, WEB, WEB_POLICY)
        on_port = [r for r in rules if r.chain == "0.0.0.0_9080" and r.kind == "http"]
        return len({r.policy for r in on_port}) == 2, on_port

    rules = wait_xds(f"the HTTP RBAC filter of {WEB} in {context}", enforced)
    by_policy = {r.policy: r for r in rules}
    first, second = by_policy[f"{WEB_POLICY}-rule[0]"], by_policy[f"{WEB_POLICY}-rule[1]"]
    assert first.principals == ("exact:spiffe://cluster.local/ns/shop/sa/frontend",)
    assert first.methods == ("GET", "HEAD")
    assert first.paths == ("exact:/healthz", "prefix:/api/")
    assert second.principals == ("prefix:spiffe://cluster.local/ns/ops/sa/",)
    assert second.methods == () and second.paths == ()
    # plain-TCP traffic to the workload: the rule with methods/paths cannot match, Istio drops it
    network = {r.policy for r in _rules(access, context, WEB, WEB_POLICY) if r.kind == "network"}
    assert network == {f"{WEB_POLICY}-rule[1]"}


def test_tcp_inbound_listener_gets_network_rbac(access: IstioSandbox) -> None:
    def enforced() -> tuple[bool, Any]:
        rules = _rules(access, "c1", DB, DB_POLICY)
        on_port = [r for r in rules if r.chain == "0.0.0.0_5432"]
        return bool(on_port), on_port

    rules = wait_xds(f"the network RBAC filter of {DB}", enforced)
    assert {r.kind for r in rules} == {"network"}
    assert {r.principals for r in rules} == {("prefix:spiffe://cluster.local/ns/billing/sa/",)}


def test_workload_of_another_service_gets_no_rule(access: IstioSandbox) -> None:
    wait_xds(
        "the policy in c1 first",
        lambda: (bool(_rules(access, "c1", WEB, WEB_POLICY)), None),
    )
    assert _rules(access, "c1", "unrelated", "ns[default]-policy[meshfed-access") == []


def _unknown_cluster(doc: dict[str, Any]) -> None:
    doc["access"] = [{"service": f"default/{WEB}", "rules": [{"from": [{"clusters": ["c9"]}]}]}]


def _mismatched_trust_domain(doc: dict[str, Any]) -> None:
    doc["clusters"][1]["trustDomain"] = "c2.example"  # not trustDomain nor an alias


def _overlapping_egress(doc: dict[str, Any]) -> None:
    doc["egress"] = {
        "allow": [
            {"host": "*.example.com", "ports": [443], "protocol": "TLS"},
            {"host": "api.example.com", "ports": [443], "protocol": "HTTPS", "namespaces": ["x"]},
        ]
    }


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param(
            _unknown_cluster, "access[0].rules[0].from[0].clusters[0]", id="unknown-cluster"
        ),
        pytest.param(
            _mismatched_trust_domain, "clusters[1].trustDomain", id="mismatched-trust-domain"
        ),
        pytest.param(
            _overlapping_egress, "egress.allow[1].ports[0]", id="overlapping-egress-ports"
        ),
    ],
)
def test_bad_input_is_refused_before_anything_is_written(
    access: IstioSandbox, tmp_path: Path, change: Callable[[dict[str, Any]], None], field: str
) -> None:
    doc = yaml.safe_load((access.directory / "federation-test.yaml").read_text())
    change(doc)
    doc["listen"] = {"http": f"127.0.0.1:{free_port()}", "grpc": f"127.0.0.1:{free_port()}"}
    config = tmp_path / "federation.yaml"
    config.write_text(yaml.safe_dump(doc))
    kinds = "serviceentries,sidecars,authorizationpolicies"
    before = {ctx: owned(access, ctx, kinds) for ctx in CONTEXTS}
    out = subprocess.run(
        [MESHFED, "federate", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode != 0
    assert field in out.stdout + out.stderr, out.stdout + out.stderr
    assert {ctx: owned(access, ctx, kinds) for ctx in CONTEXTS} == before


def test_removed_policy_is_pruned_and_rbac_filter_goes(
    access: IstioSandbox, federate_runner: FederateRunner
) -> None:
    federate_runner.ensure({})  # the same federation without its access section
    wait_xds(
        "every access policy pruned",
        lambda: (not any(_policies(access, c) for c in CONTEXTS), None),
    )
    wait_xds(
        "no RBAC rule from meshfed left on the inbound listener",
        lambda: (not _rules(access, "c1", WEB, WEB_POLICY), None),
    )

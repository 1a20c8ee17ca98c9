"""Egress and access-policy manifests: golden dicts, ownership labels, what is withheld."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from federator.core.config import FederationConfig
from federator.core.config_policy import (
    AccessOperation,
    AccessRule,
    AccessSource,
    EgressPort,
    EgressRule,
    EgressSettings,
    ServiceAccess,
)
from federator.core.desired import compute_desired
from federator.core.diff import Op, diff_cluster
from federator.core.model import ObjectRef, ServiceKey
from federator.core.render import render_cluster
from federator.core.render_policy import (
    egress_key,
    egress_object_name,
    is_egress_key,
    is_global_service_entry,
    policy_keys,
    render_egress,
    source_principals,
    with_access,
)
from tests.helpers.federator_builders import REVIEWS, cid, export, make_config, pods, view

ROOT = "istio-system"
EGRESS = EgressSettings(
    allow=(
        EgressRule(host="api.example.com", ports=(EgressPort(443, "TLS"),)),
        EgressRule(host="*.example.org", ports=(EgressPort(8080, "HTTP"), EgressPort(443))),
        EgressRule(host="db.example.net", ports=(EgressPort(5432, "TCP"),), namespaces=("shop",)),
    )
)
NAMESPACES = frozenset({ROOT, "shop", "default"})


def config(**changes: Any) -> FederationConfig:
    return dataclasses.replace(make_config(), egress=EGRESS, **changes)


def owned_meta(key: ServiceKey, name: str, policy: str, sources: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": key.namespace,
        "labels": {
            "app.kubernetes.io/managed-by": "meshfed",
            "meshfed.io/service": f"{key.namespace}.{key.name}",
            "meshfed.io/policy": policy,
        },
        "annotations": {"meshfed.io/service": str(key), "meshfed.io/source-clusters": sources},
    }


def test_policy_keys_one_per_namespace() -> None:
    assert policy_keys(config()) == {egress_key(ROOT), egress_key("shop")}
    assert policy_keys(make_config()) == frozenset()
    assert is_egress_key(egress_key("shop")) and not is_egress_key(REVIEWS)


def test_mesh_wide_egress_golden() -> None:
    key = egress_key(ROOT)
    rendered, withheld = render_egress(
        key, config=config(), target=cid("c1"), namespaces=NAMESPACES, sidecars=()
    )
    assert withheld == ()
    assert list(rendered.manifests.values()) == [
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "ServiceEntry",
            "metadata": owned_meta(key, egress_object_name("*.example.org"), "egress", ""),
            "spec": {
                "hosts": ["*.example.org"],
                "location": "MESH_EXTERNAL",
                "ports": [
                    {"number": 443, "name": "tls-443", "protocol": "TLS"},
                    {"number": 8080, "name": "http-8080", "protocol": "HTTP"},
                ],
                "resolution": "NONE",
                "exportTo": ["*"],
            },
        },
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "ServiceEntry",
            "metadata": owned_meta(key, egress_object_name("api.example.com"), "egress", ""),
            "spec": {
                "hosts": ["api.example.com"],
                "location": "MESH_EXTERNAL",
                "ports": [{"number": 443, "name": "tls-443", "protocol": "TLS"}],
                "resolution": "DNS",
                "exportTo": ["*"],
            },
        },
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "Sidecar",
            "metadata": owned_meta(key, "meshfed-egress", "egress", ""),
            "spec": {
                "egress": [{"hosts": ["*/*"]}],
                "outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"},
            },
        },
    ]
    assert sorted(rendered.manifests) == list(rendered.manifests)


def test_namespace_egress_is_exported_to_its_namespace_only() -> None:
    rendered, _ = render_egress(
        egress_key("shop"), config=config(), target=cid("c2"), namespaces=NAMESPACES, sidecars=()
    )
    entries = [m for m in rendered.manifests.values() if m["kind"] == "ServiceEntry"]
    assert [(m["spec"]["hosts"], m["spec"]["exportTo"]) for m in entries] == [
        (["db.example.net"], ["."])
    ]
    assert {r.kind for r in rendered.manifests} == {"ServiceEntry", "Sidecar"}


@pytest.mark.parametrize(
    ("namespace", "namespaces"),
    [
        pytest.param("shop", frozenset({ROOT}), id="namespace-missing-in-target"),
        pytest.param("default", NAMESPACES, id="no-entry-for-namespace"),
    ],
)
def test_nothing_rendered(namespace: str, namespaces: frozenset[str]) -> None:
    rendered, withheld = render_egress(
        egress_key(namespace), config=config(), target=cid("c1"), namespaces=namespaces, sidecars=()
    )
    assert rendered.manifests == {} and withheld == ()


def _sidecar(name: str, namespace: str, *, selector: bool = False, ours: bool = False) -> Any:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if ours:
        meta["labels"] = {"app.kubernetes.io/managed-by": "meshfed"}
    spec = {"workloadSelector": {"labels": {"app": "x"}}} if selector else {}
    return {"kind": "Sidecar", "metadata": meta, "spec": spec}


@pytest.mark.parametrize(
    ("sidecars", "blocked"),
    [
        pytest.param([_sidecar("default", "shop")], True, id="user-default-sidecar"),
        pytest.param(
            [_sidecar("pinned", "shop", selector=True)], False, id="user-workload-sidecar"
        ),
        pytest.param([_sidecar("default", "other")], False, id="other-namespace"),
        pytest.param([_sidecar("meshfed-egress", "shop", ours=True)], False, id="meshfed-own"),
    ],
)
def test_user_default_sidecar_is_never_shadowed(sidecars: list[Any], blocked: bool) -> None:
    rendered, withheld = render_egress(
        egress_key("shop"),
        config=config(),
        target=cid("c1"),
        namespaces=NAMESPACES,
        sidecars=sidecars,
    )
    sidecar = ObjectRef(cid("c1"), "Sidecar", "shop", "meshfed-egress")
    assert (sidecar in rendered.manifests) is not blocked
    assert [w.ref for w in withheld] == ([sidecar] if blocked else [])
    if blocked:
        assert "Sidecar shop/default (not meshfed's)" in withheld[0].message
    assert any(r.kind == "ServiceEntry" for r in rendered.manifests)  # the entries still go


ACCESS = ServiceAccess(
    service=REVIEWS,
    rules=(
        AccessRule(
            sources=(
                AccessSource(namespaces=("shop",), service_accounts=("frontend", "admin")),
                AccessSource(clusters=(cid("c2"),)),
            ),
            operations=(AccessOperation(methods=("GET",), paths=("/reviews/*",)),),
        ),
        AccessRule(sources=(AccessSource(namespaces=("ops",)),)),
    ),
)


def access_config() -> FederationConfig:
    base = make_config()
    clusters = tuple(
        dataclasses.replace(c, trust_domain=f"{c.name}.example") for c in base.clusters
    )
    return dataclasses.replace(base, clusters=clusters, access=(ACCESS,))


def _render(
    target: str, selector: dict[str, str] | None
) -> tuple[dict[ObjectRef, Any], tuple[Any, ...]]:
    cfg = access_config()
    views = {
        cid("c1"): view("c1", [export("c1")], {REVIEWS: pods("10.1.0", 1)}),
        cid("c2"): view("c2"),
    }
    desired = compute_desired(config=cfg, views=views)
    settings = cfg.cluster(target)
    rendered = render_cluster(desired, target=settings, namespaces=NAMESPACES, config=cfg)
    out, withheld = with_access(
        rendered, desired.services, config=cfg, selectors={REVIEWS: selector}
    )
    return out.manifests, withheld


def test_access_policy_golden() -> None:
    manifests, withheld = _render("c1", {"version": "v1", "app": "reviews"})
    assert withheld == ()
    policy = manifests[
        ObjectRef(cid("c1"), "AuthorizationPolicy", "default", "meshfed-access-reviews")
    ]
    assert policy == {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": owned_meta(REVIEWS, "meshfed-access-reviews", "access", "c1"),
        "spec": {
            "selector": {"matchLabels": {"app": "reviews", "version": "v1"}},
            "action": "ALLOW",
            "rules": [
                {
                    "from": [
                        {
                            "source": {
                                "principals": [
                                    f"{td}.example/ns/shop/sa/{sa}"
                                    for td in ("c1", "c2", "c3")
                                    for sa in ("admin", "frontend")
                                ]
                            }
                        },
                        {"source": {"principals": ["c2.example/ns/*"]}},
                    ],
                    "to": [{"operation": {"methods": ["GET"], "paths": ["/reviews/*"]}}],
                },
                {
                    "from": [
                        {
                            "source": {
                                "principals": [
                                    f"{c}.example/ns/ops/sa/*" for c in ("c1", "c2", "c3")
                                ]
                            }
                        }
                    ]
                },
            ],
        },
    }


def test_access_policy_only_where_the_service_is_exported() -> None:
    manifests, withheld = _render("c2", {"app": "reviews"})
    assert withheld == ()
    assert {r.kind for r in manifests} == {"ServiceEntry", "DestinationRule"}


def test_service_without_selector_is_withheld_and_reported() -> None:
    manifests, withheld = _render("c1", None)
    assert not any(r.kind == "AuthorizationPolicy" for r in manifests)
    (w,) = withheld
    assert w.ref == ObjectRef(cid("c1"), "AuthorizationPolicy", "default", "meshfed-access-reviews")
    assert "has no selector" in w.message


def test_principals_share_a_trust_domain_once() -> None:
    cfg = make_config()  # every cluster in cluster.local
    assert source_principals(cfg, AccessSource(namespaces=("a",), service_accounts=("x",))) == [
        "cluster.local/ns/a/sa/x"
    ]
    assert source_principals(cfg, AccessSource()) == ["cluster.local/ns/*"]


def _egress_object(name: str, namespace: str, sources: str) -> dict[str, Any]:
    key = egress_key(namespace)
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {
            **owned_meta(key, name, "egress", sources),
            "uid": "u",
            "resourceVersion": "1",
        },
        "spec": {"hosts": ["gone.example.com"]},
    }


def test_removed_egress_entry_is_pruned_even_while_a_member_is_unsynced() -> None:
    """Made from the config alone: no source cluster to wait for (fail-static does not apply)."""
    plan = diff_cluster(
        cluster=cid("c1"),
        desired={},
        actual=[_egress_object("meshfed-egress-0123456789", ROOT, "")],
        members={cid("c1"): True, cid("c2"): False},
    )
    (action,) = plan.actions
    assert action.op is Op.DELETE
    assert "made from the config alone" in action.reason


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(_egress_object("meshfed-egress-0123456789", ROOT, ""), False, id="egress"),
        pytest.param(
            {"kind": "ServiceEntry", "metadata": {"labels": {"meshfed.io/service": "a.b"}}},
            True,
            id="federated",
        ),
        pytest.param({"kind": "DestinationRule", "metadata": {}}, False, id="other-kind"),
    ],
)
def test_imported_count_skips_egress_entries(obj: dict[str, Any], expected: bool) -> None:
    assert is_global_service_entry(obj) is expected

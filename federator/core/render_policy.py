"""Policy manifests: the egress allow-list and the cross-cluster access policy. Pure.

**Egress** is reconciled per namespace under a key of its own, ``<namespace>/egress.meshfed``
(``egress_key``; ``egress.meshfed`` can never be a Service name, so it never collides with a
global service). For each namespace with entries (the root namespace for mesh-wide ones),
every member cluster gets:

- one ``MESH_EXTERNAL`` ServiceEntry per allowed host, ``meshfed-egress-<hash of host>``:
  ``resolution: DNS`` for a host name, ``NONE`` for a wildcard (the original destination is
  kept; SNI or the Host header picks the entry), ``exportTo: ["*"]`` for a mesh-wide entry
  and ``["."]`` for a namespace's own;
- the Sidecar ``meshfed-egress``: ``outboundTrafficPolicy: REGISTRY_ONLY`` and egress hosts
  ``*/*``. ``*/*`` keeps every registered service visible - in-mesh Services of any namespace,
  the federated ``*.clusterset.local`` ServiceEntries (in their service's namespace, exported
  to all), the root namespace's egress entries - so only destinations nobody registered go to
  the BlackHole cluster. A Sidecar without ``workloadSelector`` is the namespace's default (in
  the root namespace: the mesh's); Istio leaves two of them in one namespace undefined, so if
  the namespace already has one meshfed does not own, meshfed writes none and reports it
  (``Withheld``) rather than shadowing or overwriting the user's.

**Access policy** (``access[]``): in every cluster that exports the service, an ALLOW
AuthorizationPolicy ``meshfed-access-<name>`` selecting the pods of that cluster's Service
(its ``spec.selector``); each rule's ``from`` items become ``source.principals`` in Istio's
format ``<trust domain>/ns/<ns>/sa/<sa>`` (``*`` where the config leaves a part open), with the
trust domain of every cluster the item names, and its ``to`` items ``operation.methods/paths``.
A Service without a selector cannot be protected this way: withheld and reported.

Every object carries the ownership labels of the federated objects plus
``meshfed.io/policy: egress|access``, so the same list/diff/prune applies; egress objects
list no source cluster (made from the config alone, nothing to wait for before a prune).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from federator.core.config import FederationConfig
from federator.core.config_policy import (
    AccessSource,
    EgressRule,
    ServiceAccess,
    principal,
    trust_domain_of,
)
from federator.core.desired import GlobalService
from federator.core.model import (
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    SERVICE_ANNOTATION,
    SERVICE_LABEL,
    SOURCES_ANNOTATION,
    ClusterId,
    ObjectRef,
    ServiceKey,
)
from federator.core.render import (
    API_VERSION,
    NAME_PREFIX,
    SERVICE_ENTRY,
    Manifest,
    RenderedCluster,
    ref_of,
    service_label_value,
)

EGRESS_KEY_NAME = "egress.meshfed"
"""Name part of an egress key: has a dot, so no Service can be called that."""
POLICY_LABEL = "meshfed.io/policy"
"""``egress`` or ``access`` on every policy object."""
SIDECAR = "Sidecar"
SIDECAR_NAME = f"{NAME_PREFIX}egress"
AUTHORIZATION_POLICY = "AuthorizationPolicy"
SECURITY_API_VERSION = "security.istio.io/v1"


@dataclass(frozen=True, slots=True)
class Withheld:
    """An object meshfed wants but does not write, and why (reported as a refusal)."""

    ref: ObjectRef
    message: str


def egress_key(namespace: str) -> ServiceKey:
    return ServiceKey(namespace, EGRESS_KEY_NAME)


def is_egress_key(key: ServiceKey) -> bool:
    return key.name == EGRESS_KEY_NAME


def policy_keys(config: FederationConfig) -> frozenset[ServiceKey]:
    """The egress keys the config asks for (one per namespace with entries)."""
    return frozenset(egress_key(ns) for ns in config.egress.namespaces())


def is_global_service_entry(obj: Mapping[str, Any]) -> bool:
    """A ServiceEntry of a global service (not one of the egress allow-list)."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return obj.get("kind") == SERVICE_ENTRY and POLICY_LABEL not in labels


def egress_object_name(host: str) -> str:
    """``meshfed-egress-<10 hex of sha256(host)>``: stable, and valid for any host."""
    return f"{NAME_PREFIX}egress-{hashlib.sha256(host.encode()).hexdigest()[:10]}"


def _metadata(key: ServiceKey, name: str, policy: str, sources: Iterable[str]) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": key.namespace,
        "labels": {
            MANAGED_BY_LABEL: MANAGED_BY_VALUE,
            SERVICE_LABEL: service_label_value(key),
            POLICY_LABEL: policy,
        },
        "annotations": {SERVICE_ANNOTATION: str(key), SOURCES_ANNOTATION: ",".join(sources)},
    }


def egress_service_entry(key: ServiceKey, rule: EgressRule) -> Manifest:
    """The MESH_EXTERNAL ServiceEntry of one allowed host in ``key``'s namespace."""
    return {
        "apiVersion": API_VERSION,
        "kind": SERVICE_ENTRY,
        "metadata": _metadata(key, egress_object_name(rule.host), "egress", ()),
        "spec": {
            "hosts": [rule.host],
            "location": "MESH_EXTERNAL",
            "ports": [
                {
                    "number": p.number,
                    "name": f"{p.protocol.lower()}-{p.number}",
                    "protocol": p.protocol,
                }
                for p in sorted(rule.ports, key=lambda p: p.number)
            ],
            "resolution": "NONE" if rule.wildcard else "DNS",
            "exportTo": ["."] if rule.namespaces else ["*"],
        },
    }


def egress_sidecar(key: ServiceKey) -> Manifest:
    """The namespace's default Sidecar: every registered host visible, nothing else."""
    return {
        "apiVersion": API_VERSION,
        "kind": SIDECAR,
        "metadata": _metadata(key, SIDECAR_NAME, "egress", ()),
        "spec": {
            "egress": [{"hosts": ["*/*"]}],
            "outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"},
        },
    }


def foreign_default_sidecars(namespace: str, sidecars: Iterable[Mapping[str, Any]]) -> list[str]:
    """Names of the Sidecars in ``namespace`` without ``workloadSelector`` that meshfed does
    not own (a namespace's default Sidecar belongs to its user)."""
    names = []
    for obj in sidecars:
        meta = obj.get("metadata") or {}
        labels = meta.get("labels") or {}
        if meta.get("namespace") != namespace or labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE:
            continue
        if not (obj.get("spec") or {}).get("workloadSelector"):
            names.append(str(meta.get("name")))
    return sorted(names)


def render_egress(
    key: ServiceKey,
    *,
    config: FederationConfig,
    target: ClusterId,
    namespaces: frozenset[str],
    sidecars: Iterable[Mapping[str, Any]],
) -> tuple[RenderedCluster, tuple[Withheld, ...]]:
    """The egress objects of ``key``'s namespace in ``target`` (none if the config has no
    entry for it or the namespace does not exist there); ``sidecars``: the namespace's
    Sidecars as listed from ``target`` (any owner)."""
    rules = config.egress.rules_for(key.namespace)
    if not rules or key.namespace not in namespaces:
        return RenderedCluster(cluster=target, manifests={}, conditions=()), ()
    manifests = [egress_service_entry(key, rule) for rule in rules]
    withheld: list[Withheld] = []
    sidecar = egress_sidecar(key)
    users = foreign_default_sidecars(key.namespace, sidecars)
    if users:
        withheld.append(
            Withheld(
                ref_of(sidecar, target),
                f"Sidecar {key.namespace}/{users[0]} (not meshfed's) is already the default "
                f"Sidecar of namespace {key.namespace}: meshfed does not add a second one, so "
                "egress there is not REGISTRY_ONLY; set outboundTrafficPolicy.mode "
                "REGISTRY_ONLY in it yourself, or delete it",
            )
        )
    else:
        manifests.append(sidecar)
    by_ref = {ref_of(m, target): m for m in manifests}
    ordered = {ref: by_ref[ref] for ref in sorted(by_ref)}
    return RenderedCluster(cluster=target, manifests=ordered, conditions=()), tuple(withheld)


def access_for(config: FederationConfig, key: ServiceKey) -> ServiceAccess | None:
    return next((a for a in config.access if a.service == key), None)


def source_principals(config: FederationConfig, source: AccessSource) -> list[str]:
    """The principals one ``from`` item admits, sorted and without duplicates."""
    clusters = source.clusters or config.cluster_ids
    domains = sorted({trust_domain_of(config, c) for c in clusters})
    found: set[str] = set()
    for td in domains:
        if not source.namespaces:
            found.add(principal(td, None, None))
        for ns in source.namespaces:
            for sa in source.service_accounts or (None,):
                found.add(principal(td, ns, sa))
    return sorted(found)


def authorization_policy(
    service: GlobalService,
    access: ServiceAccess,
    *,
    config: FederationConfig,
    target: ClusterId,
    selector: Mapping[str, str],
) -> Manifest:
    """The ALLOW AuthorizationPolicy of ``service`` in the exporting cluster ``target``."""
    rules = []
    for rule in access.rules:
        out: dict[str, Any] = {
            "from": [{"source": {"principals": source_principals(config, s)}} for s in rule.sources]
        }
        operations = [
            {k: list(v) for k, v in (("methods", op.methods), ("paths", op.paths)) if v}
            for op in rule.operations
        ]
        if operations:
            out["to"] = [{"operation": op} for op in operations]
        rules.append(out)
    return {
        "apiVersion": SECURITY_API_VERSION,
        "kind": AUTHORIZATION_POLICY,
        "metadata": _metadata(
            service.key, f"{NAME_PREFIX}access-{service.key.name}", "access", (target,)
        ),
        "spec": {
            "selector": {"matchLabels": dict(sorted(selector.items()))},
            "action": "ALLOW",
            "rules": rules,
        },
    }


def with_access(
    rendered: RenderedCluster,
    services: Iterable[GlobalService],
    *,
    config: FederationConfig,
    selectors: Mapping[ServiceKey, Mapping[str, str] | None],
) -> tuple[RenderedCluster, tuple[Withheld, ...]]:
    """``rendered`` plus the AuthorizationPolicies of the services ``rendered.cluster``
    exports; ``selectors``: each such Service's ``spec.selector`` there (None: none)."""
    target = rendered.cluster
    manifests = dict(rendered.manifests)
    withheld: list[Withheld] = []
    for service in services:
        access = access_for(config, service.key)
        if access is None or target not in service.sources:
            continue
        selector = selectors.get(service.key)
        if not selector:
            ref = ObjectRef(
                target, AUTHORIZATION_POLICY, service.key.namespace,
                f"{NAME_PREFIX}access-{service.key.name}",
            )  # fmt: skip
            withheld.append(
                Withheld(
                    ref,
                    f"Service {service.key} in {target} has no selector: an "
                    "AuthorizationPolicy selects pods by labels, so its access policy "
                    "cannot be written",
                )
            )
            continue
        policy = authorization_policy(
            service, access, config=config, target=target, selector=selector
        )
        manifests[ref_of(policy, target)] = policy
    ordered = {ref: manifests[ref] for ref in sorted(manifests)}
    return (
        RenderedCluster(cluster=target, manifests=ordered, conditions=rendered.conditions),
        tuple(withheld),
    )

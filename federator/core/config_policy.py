"""Policy settings: the federated egress allow-list, cross-cluster access policy, trust domains.

Three parts of ``federation.yaml`` (docs/security.md explains what each writes):

- ``egress.allow``: external hosts workloads may reach. meshfed writes a ``MESH_EXTERNAL``
  ServiceEntry per host and a Sidecar with ``outboundTrafficPolicy: REGISTRY_ONLY`` (mesh-wide
  in ``egress.rootNamespace``, or in each listed namespace), in every member cluster.
- ``access``: per global service, which callers (clusters, namespaces, service accounts) may
  call it with which methods and paths; an ALLOW AuthorizationPolicy in every exporting cluster.
- ``trustDomain``/``trustDomainAliases``/``clusters[].trustDomain``: the SPIFFE trust domain of
  each cluster's workloads, which the access policy's principals are made of.

``validate_policy(config)`` refuses bad input before anything is written, with the YAML path
of the field (``egress.allow[2].ports[0]``) in the message. Parsing lives with the rest of the
file format in ``federator.core.config_parse``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from federator.core.config_checks import DNS_SUBDOMAIN, check_dns_label
from federator.core.model import ClusterId, ServiceKey
from federator.errors import ConfigError

EGRESS_PROTOCOLS = ("HTTP", "HTTPS", "TLS", "TCP")
"""Protocols an egress port may have (what an external host speaks on it)."""
DEFAULT_TRUST_DOMAIN = "cluster.local"
_HTTP_METHOD = re.compile(r"^[A-Z]+$")


@dataclass(frozen=True, slots=True)
class EgressPort:
    """One port of an allowed external host."""

    number: int
    """Port number, 1-65535."""
    protocol: str = "TLS"
    """HTTP, HTTPS, TLS or TCP; TLS (SNI-routed, the client's own TLS) by default."""


@dataclass(frozen=True, slots=True)
class EgressRule:
    """One entry of ``egress.allow``: a host, its ports, and where it is allowed."""

    host: str = ""
    """DNS name (``api.example.com``) or wildcard (``*.example.com``: resolution NONE)."""
    ports: tuple[EgressPort, ...] = ()
    """At least one; one protocol per port number."""
    namespaces: tuple[str, ...] = ()
    """Namespaces whose workloads may reach it; empty: mesh-wide."""

    @property
    def wildcard(self) -> bool:
        return self.host.startswith("*.")


@dataclass(frozen=True, slots=True)
class EgressSettings:
    """The federated egress allow-list. Empty: meshfed writes no egress objects."""

    allow: tuple[EgressRule, ...] = ()
    """Allowed external hosts. A namespace gets REGISTRY_ONLY egress as soon as one entry
    applies to it (mesh-wide entries: every namespace without a Sidecar of its own)."""
    root_namespace: str = "istio-system"
    """Istio's root namespace (meshConfig ``rootNamespace``): mesh-wide objects go there."""

    def namespaces(self) -> tuple[str, ...]:
        """Namespaces meshfed writes egress objects into, sorted."""
        found = {ns for rule in self.allow for ns in rule.namespaces}
        if any(not rule.namespaces for rule in self.allow):
            found.add(self.root_namespace)
        return tuple(sorted(found))

    def rules_for(self, namespace: str) -> tuple[EgressRule, ...]:
        """The entries written into ``namespace`` (mesh-wide ones go to the root namespace)."""
        if namespace == self.root_namespace:
            return tuple(r for r in self.allow if not r.namespaces or namespace in r.namespaces)
        return tuple(r for r in self.allow if namespace in r.namespaces)


@dataclass(frozen=True, slots=True)
class AccessSource:
    """Who may call (one ``from`` item). All given fields must match."""

    clusters: tuple[ClusterId, ...] = ()
    """Member clusters the callers run in; empty: any member. Each gives its trust domain."""
    namespaces: tuple[str, ...] = ()
    """Callers' namespaces; empty: any namespace (then ``serviceAccounts`` must be empty)."""
    service_accounts: tuple[str, ...] = ()
    """Callers' service accounts (in each of ``namespaces``); empty: any."""


@dataclass(frozen=True, slots=True)
class AccessOperation:
    """What may be called (one ``to`` item); empty fields match anything."""

    methods: tuple[str, ...] = ()
    """HTTP methods (``GET``); only HTTP ports can match methods and paths."""
    paths: tuple[str, ...] = ()
    """Paths, exact or with ``*`` at the start or the end (``/api/*``)."""


@dataclass(frozen=True, slots=True)
class AccessRule:
    """One rule: any of ``sources`` may do any of ``operations`` (none: anything)."""

    sources: tuple[AccessSource, ...] = ()
    """The YAML ``from`` list; at least one item."""
    operations: tuple[AccessOperation, ...] = ()
    """The YAML ``to`` list."""


@dataclass(frozen=True, slots=True)
class ServiceAccess:
    """The access policy of one global service (``access[]``)."""

    service: ServiceKey
    """``<namespace>/<name>`` of the global service."""
    rules: tuple[AccessRule, ...] = ()
    """Requests matching any rule are allowed; every other request to the service is denied."""


@dataclass(frozen=True, slots=True)
class TrustSettings:
    """SPIFFE trust domains: the federation's (``trustDomain``) and what istiod accepts."""

    trust_domain: str = DEFAULT_TRUST_DOMAIN
    """Trust domain of the clusters that do not set ``clusters[].trustDomain`` (meshConfig
    ``trustDomain``)."""
    aliases: tuple[str, ...] = ()
    """``trustDomainAliases``: other trust domains every member's istiod accepts (meshConfig
    ``trustDomainAliases``); a cluster's own trust domain must be one of these or
    ``trustDomain``."""

    @property
    def accepted(self) -> tuple[str, ...]:
        return (self.trust_domain, *self.aliases)


class _ClusterTrust(Protocol):
    """What the checks read of a ``clusters[]`` entry."""

    @property
    def trust_domain(self) -> str: ...


class PolicyScope(Protocol):
    """What the policy checks read of ``FederationConfig`` (a protocol, so this module does
    not import ``federator.core.config``, which imports it)."""

    @property
    def trust(self) -> TrustSettings: ...
    @property
    def egress(self) -> EgressSettings: ...
    @property
    def access(self) -> tuple[ServiceAccess, ...]: ...
    @property
    def clusters(self) -> Sequence[_ClusterTrust]: ...
    @property
    def cluster_ids(self) -> tuple[ClusterId, ...]: ...
    def cluster(self, name: str) -> _ClusterTrust: ...


def trust_domain_of(config: PolicyScope, cluster: ClusterId) -> str:
    """The trust domain of ``cluster``'s workloads (``clusters[].trustDomain``, else the
    federation's ``trustDomain``)."""
    return config.cluster(cluster).trust_domain or config.trust.trust_domain


def principal(trust_domain: str, namespace: str | None, account: str | None) -> str:
    """Istio's principal (the SPIFFE ID without ``spiffe://``); ``*`` for an unset part."""
    if namespace is None:
        return f"{trust_domain}/ns/*"
    return f"{trust_domain}/ns/{namespace}/sa/{account or '*'}"


def validate_policy(config: PolicyScope) -> None:
    """Raise ``ConfigError`` for the first invalid policy field (see the module docstring)."""
    _validate_trust(config)
    _validate_egress(config.egress)
    _validate_access(config)


def _check_trust_domain(where: str, value: str) -> None:
    if not value or len(value) > 255 or not DNS_SUBDOMAIN.match(value):
        raise ConfigError(
            f'{where} "{value}" is not a trust domain: write a lowercase DNS-like name such as '
            '"cluster.local" (no "spiffe://", no "/")'
        )


def _validate_trust(config: PolicyScope) -> None:
    trust = config.trust
    _check_trust_domain("trustDomain", trust.trust_domain)
    for i, alias in enumerate(trust.aliases):
        _check_trust_domain(f"trustDomainAliases[{i}]", alias)
        if alias in trust.accepted[: i + 1]:
            raise ConfigError(
                f'trustDomainAliases[{i}] "{alias}" is listed twice (or is trustDomain): '
                "list each trust domain once"
            )
    for i, cluster in enumerate(config.clusters):
        value = cluster.trust_domain
        if not value:
            continue
        where = f"clusters[{i}].trustDomain"
        _check_trust_domain(where, value)
        if value not in trust.accepted:
            raise ConfigError(
                f'{where} "{value}" is not among the mesh\'s trust domains '
                f"({', '.join(trust.accepted)}): istiod would not accept its workloads' "
                "certificates as the mesh's; add it to trustDomainAliases (and to every "
                "istiod's meshConfig) or fix the name"
            )


def hosts_overlap(a: str, b: str) -> bool:
    """Whether two egress hosts can name the same destination (``*.x`` covers ``y.x``)."""
    if a == b:
        return True
    for wild, other in ((a, b), (b, a)):
        if wild.startswith("*.") and other.endswith(wild[1:]):
            return True
    return False


def _scopes_overlap(a: EgressRule, b: EgressRule) -> bool:
    return not a.namespaces or not b.namespaces or bool(set(a.namespaces) & set(b.namespaces))


def _validate_egress(egress: EgressSettings) -> None:
    check_dns_label("egress.rootNamespace", egress.root_namespace)
    for i, rule in enumerate(egress.allow):
        _validate_egress_rule(f"egress.allow[{i}]", rule)
    for j, rule in enumerate(egress.allow):
        for i, earlier in enumerate(egress.allow[:j]):
            if hosts_overlap(earlier.host, rule.host) and _scopes_overlap(earlier, rule):
                _check_overlap(i, earlier, j, rule, egress.root_namespace)


def _validate_egress_rule(where: str, rule: EgressRule) -> None:
    host = rule.host
    bare = host[2:] if rule.wildcard else host
    if not host or len(host) > 253 or not DNS_SUBDOMAIN.match(bare) or "." not in bare:
        raise ConfigError(
            f'{where}.host "{host}" is not an external host name: write a DNS name such as '
            '"api.example.com" or a wildcard such as "*.example.com"'
        )
    if not rule.ports:
        raise ConfigError(f"{where}.ports is empty: list the ports the host is reached on")
    seen: set[int] = set()
    for k, port in enumerate(rule.ports):
        pwhere = f"{where}.ports[{k}]"
        if not 0 < port.number < 65536:
            raise ConfigError(f"{pwhere} {port.number} is not a port number (1-65535)")
        if port.number in seen:
            raise ConfigError(f"{pwhere} {port.number} is listed twice for {host}")
        seen.add(port.number)
        if port.protocol not in EGRESS_PROTOCOLS:
            raise ConfigError(
                f'{pwhere}.protocol "{port.protocol}" is not one of {", ".join(EGRESS_PROTOCOLS)}'
            )
        if rule.wildcard and port.protocol == "TCP":
            raise ConfigError(
                f'{pwhere}.protocol TCP cannot be used with the wildcard host "{host}": plain '
                "TCP carries no host name, so it would allow every address on port "
                f"{port.number}; use TLS/HTTPS (SNI) or HTTP (Host header), or name the host"
            )
    for k, ns in enumerate(rule.namespaces):
        check_dns_label(f"{where}.namespaces[{k}]", ns)
        if ns in rule.namespaces[:k]:
            raise ConfigError(f'{where}.namespaces[{k}] "{ns}" is listed twice')


def _check_overlap(i: int, earlier: EgressRule, j: int, rule: EgressRule, root: str) -> None:
    def written_to(r: EgressRule) -> set[str]:
        return set(r.namespaces) or {root}  # mesh-wide entries live in the root namespace

    if earlier.host == rule.host and written_to(earlier) & written_to(rule):
        raise ConfigError(
            f'egress.allow[{j}].host "{rule.host}" is already allowed by egress.allow[{i}] '
            "in the same namespace: list all of its ports in one entry"
        )
    theirs = {p.number: (k, p.protocol) for k, p in enumerate(earlier.ports)}
    for k, port in enumerate(rule.ports):
        if port.number in theirs and theirs[port.number][1] != port.protocol:
            other_k, other = theirs[port.number]
            raise ConfigError(
                f"egress.allow[{j}].ports[{k}] {port.number}/{port.protocol} of "
                f'"{rule.host}" conflicts with egress.allow[{i}].ports[{other_k}] '
                f'{port.number}/{other} of the overlapping host "{earlier.host}": a sidecar '
                "has one listener per port, so overlapping hosts must agree on its protocol"
            )


def _validate_access(config: PolicyScope) -> None:
    members = set(config.cluster_ids)
    domains = {c: trust_domain_of(config, c) for c in config.cluster_ids}
    seen: dict[ServiceKey, int] = {}
    for i, access in enumerate(config.access):
        where = f"access[{i}]"
        check_dns_label(f"{where}.service namespace", access.service.namespace)
        check_dns_label(f"{where}.service name", access.service.name)
        if access.service in seen:
            raise ConfigError(
                f'{where}.service "{access.service}" already has a policy in '
                f"access[{seen[access.service]}]: merge the rules into one entry"
            )
        seen[access.service] = i
        if not access.rules:
            raise ConfigError(f"{where}.rules is empty: list who may call {access.service}")
        for j, rule in enumerate(access.rules):
            rwhere = f"{where}.rules[{j}]"
            if not rule.sources:
                raise ConfigError(
                    f"{rwhere}.from is empty: say which clusters/namespaces/service accounts "
                    "may call (an empty from would allow every caller)"
                )
            for k, source in enumerate(rule.sources):
                _validate_source(f"{rwhere}.from[{k}]", source, members)
                _check_distinguishable(f"{rwhere}.from[{k}]", source, domains)
            for k, op in enumerate(rule.operations):
                _validate_operation(f"{rwhere}.to[{k}]", op)


def _validate_source(where: str, source: AccessSource, members: set[ClusterId]) -> None:
    for m, cluster in enumerate(source.clusters):
        if cluster not in members:
            raise ConfigError(
                f'{where}.clusters[{m}] "{cluster}" is not a member cluster; members: '
                f"{', '.join(sorted(members))}"
            )
    for m, ns in enumerate(source.namespaces):
        check_dns_label(f"{where}.namespaces[{m}]", ns)
    if source.service_accounts and not source.namespaces:
        raise ConfigError(
            f"{where}.serviceAccounts needs {where}.namespaces: a service account is named "
            "within a namespace"
        )
    for m, sa in enumerate(source.service_accounts):
        check_dns_label(f"{where}.serviceAccounts[{m}]", sa, subdomain=True)


def _check_distinguishable(where: str, source: AccessSource, domains: dict[ClusterId, str]) -> None:
    """A rule naming some clusters must not also admit the others: principals carry only the
    trust domain, so the named clusters' trust domains must be theirs alone."""
    if not source.clusters:
        return
    for m, cluster in enumerate(source.clusters):
        shared = sorted(
            c for c, td in domains.items() if td == domains[cluster] and c not in source.clusters
        )
        if shared:
            raise ConfigError(
                f'{where}.clusters[{m}] "{cluster}" has the trust domain "{domains[cluster]}" '
                f"of {', '.join(shared)} too: a caller's identity carries only its trust "
                "domain, so this rule would admit those clusters' workloads as well; give each "
                "cluster its own clusters[].trustDomain, or list them all (or omit clusters)"
            )


def _validate_operation(where: str, op: AccessOperation) -> None:
    for m, method in enumerate(op.methods):
        if not _HTTP_METHOD.match(method):
            raise ConfigError(
                f'{where}.methods[{m}] "{method}" is not an HTTP method: write it in capitals '
                '("GET", "POST")'
            )
    for m, path in enumerate(op.paths):
        inner = path[1:-1] if len(path) > 1 else ""
        if not path or path[0] not in "/*" or "*" in inner:
            raise ConfigError(
                f'{where}.paths[{m}] "{path}" is not a path Istio matches: start with "/" '
                'and use "*" only at the start or the end ("/api/*")'
            )

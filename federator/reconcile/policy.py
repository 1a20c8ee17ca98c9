"""The I/O glue of the policy objects (egress allow-list, access policy) for the reconciler.

meshfed lists its Sidecars and AuthorizationPolicies like its other objects, so a policy
removed from the config is pruned. A federation that uses neither needs no RBAC for those
kinds, though: while the config has no egress (access) entry, a refused list of Sidecars
(AuthorizationPolicies) counts as "none owned" (``optional_resources``).

The pure parts are in ``federator.core.render_policy``; here: reading the Sidecars of a
namespace (a user's default Sidecar blocks meshfed's), the exported Services' selectors (from
the caches), and turning what was withheld into status conditions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from federator.core.config import FederationConfig
from federator.core.desired import GlobalService
from federator.core.model import ClusterId, ServiceKey
from federator.core.render import RenderedCluster
from federator.core.render_policy import Withheld, is_egress_key, with_access
from federator.kube.client import KubeClient
from federator.kube.resources import (
    AUTH_POLICIES,
    DESTINATION_RULES,
    SERVICE_ENTRIES,
    SIDECARS,
    Resource,
)
from federator.status import REFUSED, RefusalCondition


class ServiceObjects(Protocol):
    """The part of the reconciler's ``World`` that knows the Services themselves."""

    def service_object(self, cluster: ClusterId, key: ServiceKey) -> Mapping[str, Any] | None: ...


def owned_resources(key: ServiceKey | None) -> tuple[Resource, ...]:
    """The kinds meshfed lists as its own for ``key`` (None: every key)."""
    if key is not None and is_egress_key(key):
        return (SERVICE_ENTRIES, SIDECARS)
    if key is None:
        return (SERVICE_ENTRIES, DESTINATION_RULES, SIDECARS, AUTH_POLICIES)
    return (SERVICE_ENTRIES, DESTINATION_RULES, AUTH_POLICIES)


def optional_resources(config: FederationConfig) -> frozenset[Resource]:
    """The policy kinds ``config`` does not use: a refused list of them (RBAC without them, an
    install from before the policies) counts as "none owned" instead of failing the target."""
    unused = set()
    if not config.egress.allow:
        unused.add(SIDECARS)
    if not config.access:
        unused.add(AUTH_POLICIES)
    return frozenset(unused)


def listed_kinds(resources: Iterable[Resource]) -> str:
    """``RefusalCondition.kind`` of a refused list of these resources."""
    return ",".join(r.kind for r in resources)


async def list_sidecars(client: KubeClient, namespace: str | None) -> list[dict[str, Any]]:
    """Every Sidecar of ``namespace`` (None: all), whoever owns it (from the watch cache)."""
    listed = await client.list(SIDECARS, namespace=namespace, resource_version="0")
    return list(listed.items)


def selectors(
    world: ServiceObjects, target: ClusterId, services: Iterable[GlobalService]
) -> dict[ServiceKey, Mapping[str, str] | None]:
    """``spec.selector`` of each service's Service in ``target`` (None if it has none)."""
    out: dict[ServiceKey, Mapping[str, str] | None] = {}
    for service in services:
        obj = world.service_object(target, service.key)
        selector = ((obj or {}).get("spec") or {}).get("selector")
        out[service.key] = dict(selector) if isinstance(selector, Mapping) else None
    return out


def render_services(
    rendered: RenderedCluster,
    services: Iterable[GlobalService],
    *,
    config: FederationConfig,
    world: ServiceObjects,
) -> tuple[RenderedCluster, tuple[Withheld, ...]]:
    """``rendered`` (the federated objects) plus the access policies ``config`` asks for."""
    services = tuple(services)
    if not config.access:
        return rendered, ()
    return with_access(
        rendered,
        services,
        config=config,
        selectors=selectors(world, rendered.cluster, services),
    )


def withheld_conditions(key: ServiceKey, withheld: Iterable[Withheld]) -> list[RefusalCondition]:
    """Status conditions for objects meshfed would write but refuses to (``Refused``)."""
    return [
        RefusalCondition(
            key=key,
            cluster=w.ref.cluster,
            reason=REFUSED,
            verb="patch",
            kind=w.ref.kind,
            name=f"{w.ref.namespace}/{w.ref.name}",
            message=w.message,
        )
        for w in withheld
    ]

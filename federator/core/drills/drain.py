"""Drain: a drill step that withdraws clusters from the other clusters' ServiceEntries.

A drain is not an extra object: it is a view of the desired state. The reactor renders each
target cluster's ServiceEntry from ``drained_view(service, target, drained)`` instead of the
service itself while the step runs, so reconciliation stays level-based and correct (a pod
that becomes ready in a drained cluster during the drill stays withdrawn; one in another
cluster appears as usual), and rollback is simply rendering without the view again.

The target's own contribution always stays: draining region A models "the other regions
lose A", while A's clients keep their local pods (what a partitioned region still has).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from federator.core.desired import DesiredState, GlobalService
from federator.core.drills.spec import Drain, DrillSpec, resolve_clusters
from federator.core.model import ClusterId, ServiceKey, Topology


def drained_view(
    service: GlobalService, target: ClusterId, drained: frozenset[ClusterId]
) -> GlobalService:
    """``service`` as ``target`` sees it with ``drained`` withdrawn (``target`` itself stays).

    Returns ``service`` itself when nothing is withdrawn, so callers can compare by identity.
    """
    kept = tuple(
        c for c in service.contributions if c.cluster == target or c.cluster not in drained
    )
    if len(kept) == len(service.contributions):
        return service
    return dataclasses.replace(service, contributions=kept)


def drained_desired(
    desired: DesiredState,
    target: ClusterId,
    drained: Mapping[ServiceKey, frozenset[ClusterId]],
) -> DesiredState:
    """``desired`` as ``target`` sees it while ``drained`` (per service, from
    ``drained_clusters``) is withdrawn: what the reactor passes to ``render_cluster`` for
    ``target``. The same object when nothing changes."""
    services = tuple(
        drained_view(s, target, drained[s.key]) if s.key in drained else s for s in desired.services
    )
    if all(a is b for a, b in zip(services, desired.services, strict=True)):
        return desired
    return dataclasses.replace(desired, services=services)


def drained_clusters(
    spec: DrillSpec,
    step_index: int,
    clusters_by_region: Mapping[str, tuple[ClusterId, ...]],
) -> Mapping[ServiceKey, frozenset[ClusterId]]:
    """Per service of the drill, the clusters step ``step_index`` drains (empty mapping for
    any other step kind). A drain applies to every service of the drill."""
    step = spec.steps[step_index]
    if not isinstance(step.action, Drain):
        return {}
    drained = resolve_clusters(step.action.clusters, step.action.regions, clusters_by_region)
    return dict.fromkeys(spec.services, drained)


def reachable_endpoints(service: GlobalService, target: ClusterId) -> int:
    """Ready endpoints a client in ``target`` can reach for ``service``, as rendered.

    Mirrors ``federator.core.render``'s rules: the target's own pods, and with the gateway
    topology another exporter's pods only through a known gateway that is up (with vpn, pod
    IPs directly). Counting pods, not ServiceEntry entries, says how much capacity is left.
    """
    total = 0
    for c in service.contributions:
        if (
            c.cluster == target
            or service.topology is Topology.VPN
            or (c.gateway_address is not None and c.gateway_healthy)
        ):
            total += c.ready_count
    return total


def reachable_in(service: GlobalService, target: ClusterId, source: ClusterId) -> int:
    """Ready endpoints of ``source`` that a client in ``target`` can reach (a cluster subset)."""
    only = tuple(c for c in service.contributions if c.cluster == source)
    return reachable_endpoints(dataclasses.replace(service, contributions=only), target)

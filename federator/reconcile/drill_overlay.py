"""The running drills' overlays on what a reconcile renders: the reconciler's drill hook.

A drill's ``drain`` step and its subsets are not objects of their own but a view of the
desired state (docs/drills.md): while a drill runs, the reconciler renders each of its target
clusters from ``drained_desired`` (during a drain step) and adds the drill's subsets to the
federated DestinationRule (``with_drill_subsets``). Reconciliation therefore stays level-based
and correct during a drill, and rollback is rendering without the overlay again. The drill
runtime (``federator.drills``) publishes the overlays; this module only applies them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from federator.core.config import ClusterSettings, FederationConfig
from federator.core.desired import DesiredState
from federator.core.drills.drain import drained_desired
from federator.core.drills.render import with_drill_subsets
from federator.core.drills.spec import DrillSpec
from federator.core.model import ClusterId, ClusterView, ServiceKey
from federator.core.render import RenderedCluster, render_cluster
from federator.core.render_policy import Withheld
from federator.reconcile.policy import ServiceObjects, render_services


@dataclass(frozen=True, slots=True)
class DrillOverlay:
    """What one running drill changes in the federated objects of its services, in its
    target clusters only."""

    spec: DrillSpec
    targets: frozenset[ClusterId]
    drained: Mapping[ServiceKey, frozenset[ClusterId]] = field(default_factory=dict)
    """Per service, the clusters the current step withdraws (empty: not a drain step)."""


def no_overlays() -> tuple[DrillOverlay, ...]:
    return ()


def render_overlaid(
    key: ServiceKey,
    desired: DesiredState,
    views: Mapping[ClusterId, ClusterView],
    *,
    targets: Iterable[ClusterSettings],
    config: FederationConfig,
    world: ServiceObjects,
    overlays: Iterable[DrillOverlay],
) -> list[tuple[RenderedCluster, tuple[Withheld, ...]]]:
    """Per target (with a view), the objects wanted there for ``key``, drills included."""
    mine = [o for o in overlays if key in o.spec.services]
    out = []
    for target in targets:
        name = target.name
        if name not in views:
            continue
        here = [o for o in mine if name in o.targets]
        seen = desired
        for o in here:
            if key in o.drained:
                seen = drained_desired(seen, name, {key: o.drained[key]})
        rendered = render_cluster(
            seen, target=target, namespaces=views[name].namespaces, config=config
        )
        if here:
            manifests = rendered.manifests
            for o in here:
                manifests = {r: with_drill_subsets(m, o.spec, key) for r, m in manifests.items()}
            rendered = dataclasses.replace(rendered, manifests=manifests)
        out.append(render_services(rendered, seen.services, config=config, world=world))
    return out

"""Blast radius and refusals, before anything is written: what ``meshfed drill plan`` shows.

For every step, service and target cluster: the endpoints a client there can reach before
the drill and during the step (``drain`` withdraws clusters, ``shift``/``route`` send traffic
to a subset that may be empty). A step that takes a service from some endpoints to none in a
target is refused unless ``allowOutage: true``; the refusal names the step, the service and
the cluster. Endpoints of a ``version`` subset are not known to the federation (the
ServiceEntries carry cluster labels, not pod labels), so their count is shown as unknown and
never refused.

Also refused: a VirtualService for a drill host that is not this drill's (a user's own, or
another drill's; Istio would merge or pick one unpredictably), a freeze, stale clusters in
scope, and a ``preconditions.notWhen`` condition that holds. All pure: the caller lists the
existing VirtualServices, evaluates the conditions and says which clusters are stale.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from federator.core.desired import DesiredState, GlobalService
from federator.core.drills.drain import drained_clusters, drained_view, reachable_endpoints
from federator.core.drills.drain import reachable_in as _reachable_in
from federator.core.drills.render import DRILL_LABEL, VIRTUAL_SERVICE, render_step
from federator.core.drills.spec import Drain, DrillSpec, Route, Shift, Step, SubsetRef, targets
from federator.core.model import ClusterId, ObjectRef, ServiceKey
from federator.core.render import Manifest


class RefusalReason(enum.StrEnum):
    OUTAGE = "Outage"
    USER_VIRTUAL_SERVICE = "UserVirtualService"
    OTHER_DRILL = "OtherDrill"
    FROZEN = "Frozen"
    STALE_CLUSTER = "StaleCluster"
    PRECONDITION = "PreconditionHolds"


@dataclass(frozen=True, slots=True, order=True)
class Refusal:
    reason: RefusalReason
    message: str


@dataclass(frozen=True, slots=True)
class EndpointCount:
    service: ServiceKey
    cluster: ClusterId
    before: int
    during: int | None
    """None: unknown (a version subset)."""


@dataclass(frozen=True, slots=True)
class StepPlan:
    index: int
    name: str
    kind: str
    objects: tuple[ObjectRef, ...]
    """The drill objects this step writes, in every target."""
    counts: tuple[EndpointCount, ...]
    """Per (service, target), sorted."""


@dataclass(frozen=True, slots=True)
class DrillPlan:
    drill: str
    targets: tuple[ClusterId, ...]
    steps: tuple[StepPlan, ...]
    refusals: tuple[Refusal, ...]
    warnings: tuple[str, ...] = ()
    """What may not work as written, without refusing it (version subsets, for now)."""

    @property
    def ok(self) -> bool:
        return not self.refusals

    def render_text(self) -> str:
        """Per cluster, per step: objects and endpoint counts before -> during; refusals."""
        out = [f"drill {self.drill}: targets {', '.join(self.targets) or '(none)'}"]
        for cluster in self.targets:
            out.append(f"cluster {cluster}:")
            for step in self.steps:
                objs = [
                    f"{r.kind} {r.namespace}/{r.name}" for r in step.objects if r.cluster == cluster
                ]
                out.append(f"  step {step.index} {step.name} ({step.kind}): "
                           f"{', '.join(objs) or 'no drill objects'}")  # fmt: skip
                for c in step.counts:
                    if c.cluster == cluster:
                        during = "unknown" if c.during is None else str(c.during)
                        out.append(f"    {c.service}: endpoints {c.before} -> {during}")
        out.extend(f"WARNING: {w}" for w in self.warnings)
        out.extend(f"REFUSED ({r.reason.value}): {r.message}" for r in self.refusals)
        return "\n".join(out) + "\n"


def _subset_count(service: GlobalService, target: ClusterId, subset: SubsetRef) -> int | None:
    if subset.cluster is None:
        return None
    return _reachable_in(service, target, subset.cluster)


def _during(
    step: Step, service: GlobalService, target: ClusterId, drained: frozenset[ClusterId] | None
) -> int | None:
    if drained is not None:
        return reachable_endpoints(drained_view(service, target, drained), target)
    action = step.action
    if isinstance(action, Shift):
        counts = [
            _subset_count(service, target, d.subset) for d in action.destinations if d.weight > 0
        ]
        known = [c for c in counts if c is not None]
        return min(known) if known else None
    if isinstance(action, Route):
        return _subset_count(service, target, action.subset)
    return reachable_endpoints(service, target)


def plan_drill(
    spec: DrillSpec,
    desired: DesiredState,
    clusters_by_region: Mapping[str, tuple[ClusterId, ...]],
    *,
    host_suffix: str,
    virtual_services: Mapping[ClusterId, Iterable[Manifest]] | None = None,
) -> DrillPlan:
    """The blast radius of ``spec`` over ``desired`` and its refusals (outage, foreign
    VirtualServices in ``virtual_services``: every VirtualService listed per target)."""
    where = targets(spec, clusters_by_region)
    hosts = {s.key: s.host for s in desired.services if s.key in spec.services}
    refusals: list[Refusal] = []
    steps: list[StepPlan] = []
    for index, step in enumerate(spec.steps):
        drains = drained_clusters(spec, index, clusters_by_region)
        objects: list[ObjectRef] = []
        counts: list[EndpointCount] = []
        for target in where:
            objects.extend(render_step(spec, index, target=target, hosts=hosts))
            for key in spec.step_services(step):
                service = desired.service(key)
                if service is None:
                    continue
                count = EndpointCount(
                    key,
                    target,
                    reachable_endpoints(service, target),
                    _during(step, service, target, drains.get(key)),
                )
                counts.append(count)
                if count.before > 0 and count.during == 0 and not spec.allow_outage:
                    refusals.append(_outage(index, step, count))
        steps.append(StepPlan(index, step.name, step.kind, tuple(objects), tuple(counts)))
    written = {
        hosts[k]
        for s in spec.steps
        if not isinstance(s.action, Drain)
        for k in spec.step_services(s)
        if k in hosts
    }
    for target in where:
        existing = (virtual_services or {}).get(target, ())
        refusals.extend(foreign_virtual_services(spec.name, written, target, existing))
    return DrillPlan(spec.name, where, tuple(steps), tuple(refusals), _warnings(spec))


def _warnings(spec: DrillSpec) -> tuple[str, ...]:
    out = []
    for key in spec.services:
        versions = [s.name for s in spec.subsets(key) if s.version is not None]
        if versions:
            out.append(
                f"{key}: subsets {', '.join(versions)} select endpoints by the pods' version "
                "label; their endpoint counts are not planned, and they are empty unless the "
                "exporting clusters' pods carry that label and the federator may list/watch "
                "pods there (see docs/drills.md, Status)"
            )
    return tuple(out)


def _outage(index: int, step: Step, count: EndpointCount) -> Refusal:
    return Refusal(
        RefusalReason.OUTAGE,
        f'step "{step.name}" (spec.steps[{index}], {step.kind}) leaves {count.service} with no '
        f"reachable endpoint in cluster {count.cluster} (before: {count.before}); set "
        "spec.allowOutage: true to run it anyway",
    )


def host_matches(pattern: str, host: str) -> bool:
    """Istio host matching: exact, or a ``*.suffix`` wildcard (``*`` matches every host)."""
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return pattern == host


def foreign_virtual_services(
    drill: str, hosts: Iterable[str], cluster: ClusterId, existing: Iterable[Manifest]
) -> tuple[Refusal, ...]:
    """Refusals for VirtualServices in ``cluster`` that route one of ``hosts`` and are not
    this drill's: a user's own (never overwritten) or another running drill's."""
    wanted = sorted(set(hosts))
    out: list[Refusal] = []
    for vs in existing:
        if vs.get("kind", VIRTUAL_SERVICE) != VIRTUAL_SERVICE:
            continue
        meta = vs.get("metadata") or {}
        owner = (meta.get("labels") or {}).get(DRILL_LABEL)
        if owner == drill:
            continue
        patterns = (vs.get("spec") or {}).get("hosts") or []
        clash = [h for h in wanted if any(host_matches(str(p), h) for p in patterns)]
        if not clash:
            continue
        name = f"VirtualService {meta.get('namespace')}/{meta.get('name')} in cluster {cluster}"
        if owner is not None:
            out.append(
                Refusal(
                    RefusalReason.OTHER_DRILL,
                    f"{name} belongs to drill {owner}, which already routes {', '.join(clash)}",
                )
            )
        else:
            out.append(
                Refusal(
                    RefusalReason.USER_VIRTUAL_SERVICE,
                    f"{name} is not meshfed's and routes {', '.join(clash)}: a drill never "
                    "overwrites a user's VirtualService; remove it or drill another service",
                )
            )
    return tuple(sorted(out))


def start_refusals(
    spec: DrillSpec,
    *,
    frozen: bool,
    stale: Iterable[ClusterId],
    holding: Mapping[str, bool],
    clusters_by_region: Mapping[str, tuple[ClusterId, ...]],
) -> tuple[Refusal, ...]:
    """Why the drill must not start now: a freeze, stale target clusters (their view may be
    wrong, and a rollback there could not be verified), or a ``notWhen`` condition that holds
    (``holding``: condition name -> whether its expression returned a non-empty result)."""
    out: list[Refusal] = []
    if frozen:
        out.append(Refusal(RefusalReason.FROZEN, "drills are frozen: run meshfed drill unfreeze"))
    in_scope = set(targets(spec, clusters_by_region))
    for cluster in sorted(set(stale) & in_scope):
        out.append(
            Refusal(
                RefusalReason.STALE_CLUSTER,
                f"cluster {cluster} is in scope but not synced and healthy",
            )
        )
    for i, cond in enumerate(spec.preconditions.not_when):
        if holding.get(cond.name):
            out.append(
                Refusal(
                    RefusalReason.PRECONDITION,
                    f"spec.preconditions.notWhen[{i}] ({cond.name}) holds: {cond.expr}",
                )
            )
    return tuple(out)

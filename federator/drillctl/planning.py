"""``meshfed drill plan`` (and the checks before ``run``): the drill against the live federation.

The federation's state is loaded the way ``meshfed plan`` loads it (one list per kind and
member, ``federator.reactor.world.snapshot``) and the desired state computed from it; then the
pure core decides: ``check_against`` (unknown services, clusters, regions), ``plan_drill``
(blast radius, foreign VirtualServices) and ``start_refusals`` (freeze, stale clusters,
``preconditions.notWhen`` evaluated against the store when one is given). Nothing is written.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from federator.core.config import FederationConfig
from federator.core.desired import compute_desired
from federator.core.drills.check import check_against
from federator.core.drills.plan import DrillPlan, Refusal, plan_drill, start_refusals
from federator.core.drills.spec import DrillSpec, targets
from federator.core.model import ClusterId
from federator.core.render import Manifest
from federator.drillctl import home as homeops
from federator.drillctl.store import StoreClient, StoreError
from federator.errors import ApiPermanentError, DrillSpecError, FederatorError
from federator.kube.client import KubeClient
from federator.kube.resources import Resource
from federator.reactor.world import snapshot

VIRTUAL_SERVICES = Resource("networking.istio.io", "v1", "virtualservices", "VirtualService")


@dataclass(frozen=True, slots=True)
class DrillCheck:
    """Everything ``plan`` prints and everything ``run`` refuses on."""

    spec_errors: tuple[DrillSpecError, ...]
    plan: DrillPlan | None
    start: tuple[Refusal, ...]
    warnings: tuple[str, ...]

    @property
    def refusals(self) -> tuple[Refusal, ...]:
        return (*(self.plan.refusals if self.plan else ()), *self.start)

    def render_text(self) -> str:
        out = [f"error: {e}" for e in self.spec_errors]
        if self.plan is not None:
            out.append(self.plan.render_text().rstrip("\n"))
        out += [f"REFUSED ({r.reason.value}): {r.message}" for r in self.start]
        out += [f"warning: {w}" for w in self.warnings]
        if not self.spec_errors:
            out.append("OK: the drill may run" if not self.refusals else "the drill is refused")
        return "\n".join(out) + "\n"


def clusters_by_region(config: FederationConfig) -> dict[str, tuple[ClusterId, ...]]:
    """Member clusters per ``clusters[].region`` (clusters without a region under "")."""
    out: dict[str, list[ClusterId]] = {}
    for c in config.clusters:
        out.setdefault(c.region, []).append(c.name)
    return {k: tuple(sorted(v)) for k, v in out.items()}


async def _virtual_services(client: KubeClient) -> list[Manifest]:
    try:
        return (await client.list(VIRTUAL_SERVICES)).items
    except ApiPermanentError as exc:
        if exc.status == 404:  # no Istio CRDs in that cluster: no VirtualService to clash with
            return []
        raise


def _holding(spec: DrillSpec, store: StoreClient | None, warnings: list[str]) -> dict[str, bool]:
    out: dict[str, bool] = {}
    if not spec.preconditions.not_when:
        return out
    if store is None:
        warnings.append(
            "preconditions.notWhen not evaluated (no --store): the controller evaluates them "
            "when the drill starts"
        )
        return out
    now = time.time()
    for cond in spec.preconditions.not_when:
        try:
            out[cond.name] = bool(store.query(cond.expr, now))
        except StoreError as exc:
            warnings.append(f"precondition {cond.name} not evaluated: {exc}")
    return out


async def check_drill(
    spec: DrillSpec,
    *,
    config: FederationConfig,
    clients: Mapping[ClusterId, KubeClient],
    home: KubeClient,
    namespace: str,
    store: StoreClient | None,
) -> DrillCheck:
    world, errors = await snapshot(config, clients)
    desired = compute_desired(config=config, views=world.views(None))
    by_region = clusters_by_region(config)
    spec_errors = check_against(spec, frozenset(s.key for s in desired.services), by_region)
    warnings = [
        f"cluster {name} is unreachable: its exports are not counted ({error})"
        for name, error in sorted(errors.items())
    ]
    if spec_errors:
        return DrillCheck(spec_errors, None, (), tuple(warnings))
    where = targets(spec, by_region)
    existing: dict[ClusterId, list[Manifest]] = {}
    for target in where:
        if target in errors:
            continue
        try:
            existing[target] = await _virtual_services(clients[target])
        except FederatorError as exc:
            warnings.append(f"cannot list VirtualServices in {target}: {exc}")
    plan = plan_drill(
        spec, desired, by_region, host_suffix=config.host_suffix, virtual_services=existing
    )
    stale = [c for c in config.cluster_ids if not world.writable(c)]
    start = start_refusals(
        spec,
        frozen=await homeops.frozen(home, namespace) is not None,
        stale=stale,
        holding=_holding(spec, store, warnings),
        clusters_by_region=by_region,
    )
    return DrillCheck((), plan, start, tuple(warnings))

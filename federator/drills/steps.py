"""What each journal action does in the clusters (the I/O of one drill), as events to record.

Each method does one action of ``next_action`` and returns the events ``record`` takes; it
never changes the journal itself. Every write is idempotent (server-side apply, deletes by
label, reconciles), so an action repeated after a crash or a lost status write is harmless.

Drain and subsets go through the reconciler (the overlays the controller publishes are read at
every reconcile); the step's VirtualServices are written here. The order keeps routes valid:
the DestinationRule with the drill's subsets is reconciled before a VirtualService names a
subset, and on rollback the VirtualServices go before the subsets.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from federator.core.config import FederationConfig
from federator.core.desired import compute_desired
from federator.core.drills.check import check_against
from federator.core.drills.journal import Event, EventType, ExitReason, Journal
from federator.core.drills.plan import plan_drill, start_refusals
from federator.core.drills.render import render_step
from federator.core.drills.spec import Drain, DrillSpec, targets
from federator.core.drills.verify import snapshot_cluster, verified_message, verify_cluster
from federator.core.model import ClusterId, ServiceKey
from federator.drills.guards import GuardClient
from federator.drills.objects import (
    apply_virtual_services,
    delete_objects,
    list_virtual_services,
)
from federator.errors import FederatorError
from federator.kube.client import KubeClient
from federator.metrics import FederatorMetrics
from federator.reconcile.policy import optional_resources, owned_resources
from federator.reconcile.reconciler import Reconciler, World, list_owned

log = logging.getLogger(__name__)


def clusters_by_region(config: FederationConfig) -> dict[str, tuple[ClusterId, ...]]:
    """Member clusters per ``clusters[].region`` (clusters without a region under "")."""
    out: dict[str, list[ClusterId]] = {}
    for c in config.clusters:
        out.setdefault(c.region, []).append(c.name)
    return {k: tuple(sorted(v)) for k, v in out.items()}


class DrillSteps:
    """The I/O of every journal action, for any drill."""

    def __init__(
        self,
        *,
        config: FederationConfig,
        clients: Mapping[ClusterId, KubeClient],
        reconciler: Reconciler,
        world: World,
        guards: GuardClient,
        metrics: FederatorMetrics,
        enqueue: Callable[[ServiceKey], object],
    ) -> None:
        self._config = config
        self._clients = clients
        self._reconciler = reconciler
        self._world = world
        self._guards = guards
        self._metrics = metrics
        self._enqueue = enqueue
        self.by_region = clusters_by_region(config)
        self.snapshots: dict[str, dict[ClusterId, dict[Any, Any]]] = {}
        """Per drill, the pre-drill snapshot of each target (in memory only, docs/drills.md)."""

    def targets(self, spec: DrillSpec) -> tuple[ClusterId, ...]:
        return targets(spec, self.by_region)

    async def reconcile(self, spec: DrillSpec) -> None:
        """Render the drill's services with the current overlays now (and queue them, so the
        reactor's bookkeeping sees the change too). A failed reconcile raises."""
        for key in spec.services:
            self._enqueue(key)
            result = await self._reconciler.reconcile(key)
            if result.retryable is not None:
                raise result.retryable
            if result.refused is not None:
                raise result.refused

    async def preconditions(self, spec: DrillSpec, *, frozen: bool, now: float) -> Event:
        """``PreconditionsPassed`` or ``Exit(PreconditionFailed)`` naming every refusal."""
        views = self._world.views(None)
        desired = compute_desired(config=self._config, views=views, keys=None)
        known = frozenset(s.key for s in desired.services)
        problems = [str(e) for e in check_against(spec, known, self.by_region)]
        holding: dict[str, bool] = {}
        for cond in spec.preconditions.not_when:
            evaluation = await self._guards.evaluate(cond.expr)
            holding[cond.name] = bool(evaluation.holds)
        where = self.targets(spec)
        stale = [c for c in where if not self._world.writable(c)]
        refusals = start_refusals(
            spec, frozen=frozen, stale=stale, holding=holding, clusters_by_region=self.by_region
        )
        problems.extend(f"{r.reason.value}: {r.message}" for r in refusals)
        if not problems:
            existing = {c: await list_virtual_services(self._clients[c]) for c in where}
            plan = plan_drill(
                spec,
                desired,
                self.by_region,
                host_suffix=self._config.host_suffix,
                virtual_services=existing,
            )
            problems.extend(f"{r.reason.value}: {r.message}" for r in plan.refusals)
        if problems:
            message = "; ".join(problems)
            return Event(EventType.EXIT, at=now, reason=ExitReason.REFUSED, message=message)
        return Event(EventType.PRECONDITIONS_PASSED, at=now)

    async def snapshot(self, spec: DrillSpec) -> None:
        """Keep the managed view of the federated objects in every target (before step 0)."""
        out: dict[ClusterId, dict[Any, Any]] = {}
        for cluster in self.targets(spec):
            live, wanted = await self._federated(spec, cluster)
            out[cluster] = snapshot_cluster(cluster, live, wanted)
        self.snapshots[spec.name] = out

    async def apply_step(
        self, spec: DrillSpec, journal: Journal, step: int, clusters: tuple[ClusterId, ...]
    ) -> list[Event]:
        """Step ``step`` in ``clusters``: reconcile (drain, subsets), then the step's
        VirtualServices (the previous step's that it does not keep are deleted)."""
        await self.reconcile(spec)
        views = self._world.views(spec.services)
        desired = compute_desired(config=self._config, views=views, keys=list(spec.services))
        hosts = {s.key: s.host for s in desired.services}
        events = []
        started = journal.step_started_at or time.time()
        for cluster in clusters:
            client = self._clients[cluster]
            wanted = render_step(spec, step, target=cluster, hosts=hosts)
            names = {(r.namespace, r.name) for r in wanted}
            existing = await list_virtual_services(client, drill=spec.name)
            stale = [
                o
                for o in existing
                if (o["metadata"]["namespace"], o["metadata"]["name"]) not in names
            ]
            await delete_objects(client, stale)
            await apply_virtual_services(client, wanted.values())
            now = time.time()
            latency = max(0.0, now - started)
            self._metrics.drill_step_propagation.labels(cluster=cluster).observe(latency)
            kind = "drain (ServiceEntries)" if isinstance(spec.steps[step].action, Drain) else ""
            events.append(
                Event(
                    EventType.STEP_APPLIED,
                    at=now,
                    step=step,
                    cluster=cluster,
                    latency=latency,
                    message=f"applied {len(wanted)} VirtualService(s) {kind}".strip(),
                )
            )
        return events

    async def evaluate(self, spec: DrillSpec, names: tuple[str, ...]) -> list[Event]:
        guards = {g.name: g for g in spec.abort_when + spec.hypothesis.steady_state}
        found = [guards[n] for n in names if n in guards]
        results = await asyncio.gather(*(self._guards.evaluate(g.expr) for g in found))
        now = time.time()
        return [
            Event(
                EventType.GUARD_EVALUATED,
                at=now,
                guard=g.name,
                value=r.value,
                holds=r.holds,
                message=r.message,
            )
            for g, r in zip(found, results, strict=True)
        ]

    async def remove_virtual_services(self, spec: DrillSpec, cluster: ClusterId) -> None:
        client = self._clients[cluster]
        await delete_objects(client, await list_virtual_services(client, drill=spec.name))

    async def verify(self, spec: DrillSpec) -> Event:
        """``Verified``: every target's live objects against what a reconcile wants now."""
        results = []
        snapshots = self.snapshots.get(spec.name)
        for cluster in self.targets(spec):
            live, wanted = await self._federated(spec, cluster)
            live.extend(await list_virtual_services(self._clients[cluster], drill=spec.name))
            _, members = self._reconciler.expected(spec.services[0])
            result = verify_cluster(
                cluster,
                drill=spec.name,
                snapshot=None if snapshots is None else snapshots.get(cluster),
                desired=wanted,
                live=live,
                members=members,
            )
            results.append(result)
        holds = all(r.ok for r in results)
        message = verified_message(results, snapshot=snapshots is not None)
        return Event(EventType.VERIFIED, at=time.time(), holds=holds, message=message)

    async def _federated(
        self, spec: DrillSpec, cluster: ClusterId
    ) -> tuple[list[dict[str, Any]], dict[Any, Any]]:
        """The owned objects of the drill's services in ``cluster`` and what is wanted there."""
        client = self._clients[cluster]
        live: list[dict[str, Any]] = []
        wanted: dict[Any, Any] = {}
        optional = optional_resources(self._config)
        for key in spec.services:
            live.extend(await list_owned(client, key, owned_resources(key), optional))
            per_target, _ = self._reconciler.expected(key)
            wanted.update(per_target.get(cluster, {}))
        return live, wanted


def describe(exc: BaseException) -> str:
    """A short message for an Exit(Error) event."""
    kind = type(exc).__name__ if isinstance(exc, FederatorError) else "unexpected error"
    return f"{kind}: {exc}"[:500]

"""``reconcile(key)``: desired -> render -> diff -> apply for one global service, in every target.

Level-based (ADR 0000): the request carries only the key; everything is recomputed from the
current views of all clusters and the objects meshfed owns in each target for that key (label
``meshfed.io/service``; read from a watch-fed index that also records our own writes, or
listed while it is not ready: ``federator.reconcile.owned``), so a reconcile is correct
whatever happened before.
A target is written only when its own watches are synced and healthy (its namespaces are
known and it answers); skipped targets are picked up when they come back (the sources
enqueue every key then). The ``Result`` reports how it went - the first transient failure,
the first refusal, whether RBAC denied a verb, the largest Retry-After - and nothing more:
what follows (forget, requeue with backoff, a slow retry after a Forbidden) is decided and
counted by the controller (``federator.reactor.controller``), in one place.

Refused requests (S6): every request a target refuses for good becomes a ``RefusalCondition``
on the service for that target (verb, object, the apiserver's message) - ``Forbidden`` for
RBAC (403), ``Refused`` otherwise - and lasts until a reconcile writes to that target again
without a failure (a target skipped, or failing only transiently, keeps its refusals). A
service whose objects could not all be pruned stays in ``imported``, so resyncs retry the
prune instead of forgetting the leftover. Nothing else is deleted instead.

Policies (``federator.reconcile.policy``): a service's access policy is written with its other
objects; an egress key (``<namespace>/egress.meshfed``) reconciles a namespace's egress objects.

Leader election (R5): a replica that does not lead reconciles nothing (its caches stay warm
for a takeover), and the lease is checked again before each target's write batch; the
client checks it once more before every request (``federator.kube.leader``).

Also here: port/topology conflicts become Kubernetes Events on the losing Service (once per
distinct conflict), the status registry is updated, and ``plan_all`` computes the whole
federation's plan without writing (``meshfed plan`` and the status API).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from federator.core.config import FederationConfig
from federator.core.desired import DesiredState, compute_desired
from federator.core.diff import ClusterPlan, Plan, diff_cluster
from federator.core.model import (
    ClusterId,
    ClusterView,
    ServiceKey,
)
from federator.core.render import RenderedCluster, render_cluster
from federator.core.render_policy import Withheld, is_egress_key, policy_keys, render_egress
from federator.errors import FederatorError, NotLeaderError
from federator.kube.client import KubeClient
from federator.metrics import FederatorMetrics
from federator.reconcile.apply import ApplyOutcome, execute
from federator.reconcile.drill_overlay import DrillOverlay, no_overlays, render_overlaid
from federator.reconcile.imported import ImportedIndex
from federator.reconcile.outcome import (
    Result,
    Tally,
    carried_refusals,
    condition_order,
    list_failed,
)
from federator.reconcile.owned import MemberPool, OwnedIndex, read_owned
from federator.reconcile.owned import list_owned as list_owned  # noqa: PLC0414 (re-export)
from federator.reconcile.owned_codec import BlobPool
from federator.reconcile.owned_slots import IdentSlots
from federator.reconcile.policy import (
    list_sidecars,
    optional_resources,
    owned_resources,
    render_services,
    withheld_conditions,
)
from federator.status import ChangeEvent, ServiceStatus, StatusRegistry
from federator.status_packed import PackedEndpoints, TargetSeconds, TargetTimes

MAX_REMEMBERED_EVENTS = 10_000


class World(Protocol):
    """What the reconciler reads about the clusters (``federator.reactor.world.CacheWorld``)."""

    def views(self, keys: Iterable[ServiceKey] | None) -> dict[ClusterId, ClusterView]: ...

    def service_object(self, cluster: ClusterId, key: ServiceKey) -> Mapping[str, Any] | None: ...

    def writable(self, cluster: ClusterId) -> bool:
        """The target's watches are synced and healthy."""
        ...


class Reconciler:
    """Reconciles global services into every writable member cluster."""

    def __init__(
        self,
        *,
        config: FederationConfig,
        world: World,
        clients: Mapping[ClusterId, KubeClient],
        metrics: FederatorMetrics,
        status: StatusRegistry,
        leading: Callable[[], bool] = lambda: True,
        overlays: Callable[[], Iterable[DrillOverlay]] = no_overlays,
    ) -> None:
        """``leading``: whether this replica may write now (leader election); ``overlays``:
        the running drills' changes, read at every reconcile (``federator.drills``)."""
        self._overlays = overlays
        self._config = config
        self._leading = leading
        self._world = world
        self._clients = clients
        self._metrics = metrics
        self._status = status
        self._events_sent: set[tuple[Any, ...]] = set()
        self.imported = ImportedIndex(config.cluster_ids)
        """Per target: services whose objects exist there (as of the last reconcile)."""
        # a global service's objects (and a group's idents) are alike in every target
        pool, members, slots = BlobPool(), MemberPool(), IdentSlots()
        self.owned = {c: OwnedIndex(pool, members, slots) for c in config.cluster_ids}
        """Per target: what meshfed owns there (fed by the sources' watches and our writes)."""
        self.conflicts: dict[ServiceKey, int] = {}

    async def reconcile(self, key: ServiceKey, *, observed_at: float | None = None) -> Result:
        if not self._leading():
            return Result()  # a standby: the leader reconciles; a takeover enqueues every key
        if is_egress_key(key):
            return await self._reconcile_egress(key, observed_at)
        views = self._world.views([key])
        desired = compute_desired(config=self._config, views=views, keys=[key])
        members = {c: (views[c].trusted if c in views else False) for c in self._config.cluster_ids}
        old = self._status.service(key)
        tally = Tally(key=key, conditions=list(desired.conditions))
        if old is not None:
            tally.last_applied.update(old.last_applied)
            tally.last_propagation.update(old.last_propagation)
        renders = self._render(key, desired, views)
        # Targets are independent: write them concurrently, so a reconcile costs the slowest
        # target's round trips rather than the sum over all clusters.
        outcomes = await asyncio.gather(
            *(self._write_target(key, rendered, members, observed_at) for rendered, _ in renders)
        )
        for (rendered, withheld), (outcome, latency) in zip(renders, outcomes, strict=True):
            tally.conditions.extend(rendered.conditions)
            tally.conditions.extend(withheld_conditions(key, withheld))
            tally.add(rendered.cluster, outcome, latency)
        await self._send_conflict_events(desired)
        tally.conditions.extend(carried_refusals(old, tally.settled))
        self._update_status(key, views, desired, tally)
        return tally.result()

    def _render(
        self, key: ServiceKey, desired: DesiredState, views: Mapping[ClusterId, ClusterView]
    ) -> list[tuple[RenderedCluster, tuple[Withheld, ...]]]:
        """Per writable target, the objects wanted there, with the drills' overlays."""
        writable = [t for t in self._config.clusters if self._world.writable(t.name)]
        return render_overlaid(
            key, desired, views, targets=writable, config=self._config, world=self._world,
            overlays=self._overlays(),
        )  # fmt: skip

    def expected(
        self, key: ServiceKey
    ) -> tuple[dict[ClusterId, dict[Any, Any]], dict[ClusterId, bool]]:
        """What a reconcile of ``key`` wants now per writable target (with the overlays of
        the drills still running) and the members' trust, as ``diff_cluster`` takes it: the
        reference a drill's verification compares the live objects with."""
        views = self._world.views([key])
        desired = compute_desired(config=self._config, views=views, keys=[key])
        members = {c: (views[c].trusted if c in views else False) for c in self._config.cluster_ids}
        wanted = {r.cluster: dict(r.manifests) for r, _ in self._render(key, desired, views)}
        return wanted, members

    async def _reconcile_egress(self, key: ServiceKey, observed_at: float | None) -> Result:
        """The egress objects of one namespace (``key``), in every writable target."""
        views = self._world.views(())
        members = {c: (views[c].trusted if c in views else False) for c in self._config.cluster_ids}
        targets = [c for c in self._config.cluster_ids if self._world.writable(c) and c in views]
        writes = (
            self._write_egress(key, c, views[c].namespaces, members, observed_at) for c in targets
        )
        outcomes = await asyncio.gather(*writes)
        old = self._status.service(key)
        tally = Tally(key=key)
        if old is not None:
            tally.last_applied.update(old.last_applied)
            tally.last_propagation.update(old.last_propagation)
        for target, ((outcome, latency), withheld) in zip(targets, outcomes, strict=True):
            tally.conditions.extend(withheld_conditions(key, withheld))
            tally.add(target, outcome, latency)
        tally.conditions.extend(carried_refusals(old, tally.settled))
        if tally.conditions:  # an egress namespace is listed only while something is wrong
            self._status.set_service(
                ServiceStatus(
                    key=key,
                    conditions=tuple(sorted(set(tally.conditions), key=condition_order)),
                    last_applied=TargetTimes(tally.last_applied),
                    last_propagation=TargetSeconds(tally.last_propagation),
                )
            )
        else:
            self._status.remove_service(key)
        return tally.result()

    async def _write_egress(
        self,
        key: ServiceKey,
        target: ClusterId,
        namespaces: frozenset[str],
        members: Mapping[ClusterId, bool],
        observed_at: float | None,
    ) -> tuple[tuple[ApplyOutcome, float | None], tuple[Withheld, ...]]:
        client = self._clients[target]
        try:
            sidecars = await list_sidecars(client, key.namespace)
        except FederatorError as exc:
            return (list_failed(target, key, owned_resources(key), exc), None), ()
        rendered, withheld = render_egress(
            key, config=self._config, target=target, namespaces=namespaces, sidecars=sidecars
        )
        outcome = await self._write_target(key, rendered, members, observed_at, extra=sidecars)
        return outcome, withheld

    async def _write_target(
        self,
        key: ServiceKey,
        rendered: RenderedCluster,
        members: Mapping[ClusterId, bool],
        observed_at: float | None,
        *,
        extra: list[dict[str, Any]] | None = None,
    ) -> tuple[ApplyOutcome, float | None]:
        """List what meshfed owns for ``key`` in the target, diff, execute, track imports.
        ``extra``: objects of other kinds already read (an egress key's Sidecars). Also
        returns the propagation latency of this write (None without an observed change)."""
        target = rendered.cluster
        client = self._clients[target]
        resources = owned_resources(key)
        if extra is not None:
            resources = tuple(r for r in resources if r.kind != "Sidecar")
        optional = optional_resources(self._config)
        try:
            owned = await read_owned(self.owned.get(target), client, key, resources, optional)
            actual = [*owned, *(extra or [])]
        except FederatorError as exc:
            failed = list_failed(target, key, tuple(r for r in resources if r not in optional), exc)
            return failed, None
        plan = diff_cluster(
            cluster=target, desired=rendered.manifests, actual=actual, members=members
        )
        if plan.actions and not self._leading():  # the fence, before each write batch
            error = NotLeaderError(f"writes to {target} for {key}: this replica stopped leading")
            return ApplyOutcome(retryable=error), None
        index = self.owned.get(target)
        outcome = await execute(
            plan, client=client, on_applied=index.applied if index is not None else None
        )
        if index is not None:
            index.record((), outcome.deleted)
        latency = self._record(key, plan, outcome.written, observed_at)
        if is_egress_key(key):
            pass  # not a global service: reconciled from the config, not tracked as imported
        elif rendered.manifests or plan.kept or outcome.failed:
            self.imported.add(target, key)  # a failed prune is retried, not forgotten
        else:
            self.imported.discard(target, key)
        return outcome, latency

    def _record(
        self,
        key: ServiceKey,
        plan: ClusterPlan,
        written: list[Any],
        observed_at: float | None,
    ) -> float | None:
        """Counts, change events, and the propagation latency of the writes (returned)."""
        self._metrics.prunes_suppressed.labels(cluster=plan.cluster).set(len(plan.kept))
        now = datetime.now(UTC)
        for ref, op in written:
            counter = (
                self._metrics.objects_pruned
                if op.value == "delete"
                else self._metrics.objects_applied
            )
            counter.labels(cluster=ref.cluster, kind=ref.kind).inc()
            self._status.publish(
                ChangeEvent(
                    sequence=self._status.next_sequence(),
                    time=now,
                    cluster=ref.cluster,
                    key=key,
                    kind=ref.kind,
                    name=ref.name,
                    op=op.value,
                )
            )
        if not written or observed_at is None:
            return None
        latency = max(0.0, time.monotonic() - observed_at)
        self._metrics.propagation_latency.labels(target=plan.cluster).observe(latency)
        return latency

    async def _send_conflict_events(self, desired: DesiredState) -> None:
        for conflict in desired.conflicts:
            ident = (conflict.key, conflict.loser, conflict.reason, conflict.message)
            if ident in self._events_sent:
                continue
            service = self._world.service_object(conflict.loser, conflict.key)
            client = self._clients.get(conflict.loser)
            if service is None or client is None or len(self._events_sent) >= MAX_REMEMBERED_EVENTS:
                self._metrics.events_dropped.inc()
                continue
            try:
                await client.create_event(
                    involved=service, reason=conflict.reason.value, message=conflict.message
                )
                self._events_sent.add(ident)
            except FederatorError:
                self._metrics.events_dropped.inc()

    def _update_status(
        self,
        key: ServiceKey,
        views: Mapping[ClusterId, ClusterView],
        desired: DesiredState,
        tally: Tally,
    ) -> None:
        service = desired.service(key)
        exporters = tuple(sorted(c for c, v in views.items() if key in v.exported))
        self.conflicts[key] = len(desired.conflicts)
        if not self.conflicts[key]:
            del self.conflicts[key]
        if service is None and not exporters and not self.imported.anywhere(key):
            self._status.remove_service(key)
            return
        self._status.set_service(
            ServiceStatus(
                key=key,
                exporting_clusters=exporters,
                endpoints=PackedEndpoints(
                    {c: tuple(views[c].endpoints.get(key, ())) for c in exporters}
                ),
                conflicts=desired.conflicts,
                conditions=tuple(sorted(set(tally.conditions), key=condition_order)),
                last_applied=TargetTimes(tally.last_applied),
                last_propagation=TargetSeconds(tally.last_propagation),
            )
        )

    async def plan_all(self) -> Plan:
        """The plan of the whole federation against live state; writes nothing."""
        return await plan_all(config=self._config, world=self._world, clients=self._clients)


async def plan_all(
    *, config: FederationConfig, world: World, clients: Mapping[ClusterId, KubeClient]
) -> Plan:
    """Desired (all keys) vs everything meshfed owns in each writable target."""
    views = world.views(None)
    desired = compute_desired(config=config, views=views)
    members = {c: (views[c].trusted if c in views else False) for c in config.cluster_ids}
    plans: list[ClusterPlan] = []
    for target in config.clusters:
        if not world.writable(target.name) or target.name not in views:
            continue
        namespaces = views[target.name].namespaces
        rendered, _ = render_services(
            render_cluster(desired, target=target, namespaces=namespaces, config=config),
            desired.services,
            config=config,
            world=world,
        )
        client = clients[target.name]
        manifests = dict(rendered.manifests)
        sidecars = await list_sidecars(client, None) if config.egress.allow else []
        for key in sorted(policy_keys(config)):
            egress, _ = render_egress(
                key, config=config, target=target.name, namespaces=namespaces, sidecars=sidecars
            )
            manifests.update(egress.manifests)
        actual = await list_owned(client, None, owned_resources(None), optional_resources(config))
        plans.append(
            diff_cluster(cluster=target.name, desired=manifests, actual=actual, members=members)
        )
    return Plan(clusters=tuple(plans))

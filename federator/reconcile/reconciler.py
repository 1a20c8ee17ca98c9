"""``reconcile(key)``: desired -> render -> diff -> apply for one global service, in every target.

Level-based (ADR 0000): the request carries only the key; everything is recomputed from the
current views of all clusters and the objects meshfed owns in each target, listed fresh for
that key (label ``meshfed.io/service``), so a reconcile is correct whatever happened before.
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
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    SERVICE_LABEL,
    ClusterId,
    ClusterView,
    ServiceKey,
)
from federator.core.render import RenderedCluster, render_cluster, service_label_value
from federator.core.render_policy import Withheld, is_egress_key, policy_keys, render_egress
from federator.errors import FederatorError, NotLeaderError, PermanentError
from federator.kube.client import DESTINATION_RULES, SERVICE_ENTRIES, KubeClient, Resource
from federator.metrics import FederatorMetrics
from federator.reconcile.apply import ApplyOutcome, execute
from federator.reconcile.outcome import (
    Result,
    Tally,
    carried_refusals,
    condition_order,
    list_failed,
)
from federator.reconcile.policy import (
    list_sidecars,
    optional_resources,
    owned_resources,
    render_services,
    withheld_conditions,
)
from federator.status import (
    ChangeEvent,
    ServiceCondition,
    ServiceStatus,
    StatusRegistry,
)

OWNED_SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"
MAX_REMEMBERED_EVENTS = 10_000


class World(Protocol):
    """What the reconciler reads about the clusters (``federator.reactor.world.CacheWorld``)."""

    def views(self, keys: Iterable[ServiceKey] | None) -> dict[ClusterId, ClusterView]: ...

    def service_object(self, cluster: ClusterId, key: ServiceKey) -> Mapping[str, Any] | None: ...

    def writable(self, cluster: ClusterId) -> bool:
        """The target's watches are synced and healthy."""
        ...


async def list_owned(
    client: KubeClient,
    key: ServiceKey | None = None,
    resources: tuple[Resource, ...] = (SERVICE_ENTRIES, DESTINATION_RULES),
    optional: frozenset[Resource] = frozenset(),
) -> list[dict[str, Any]]:
    """Objects of ``resources`` meshfed owns in a cluster (for one key, or all).

    For one service the read is namespaced and served from the apiserver's watch cache
    (``resourceVersion=0``): a stale answer is safe because applies are server-side applies
    (idempotent) and deletes carry uid/resourceVersion preconditions, and it keeps a
    reconcile from costing a consistent etcd LIST per target. The whole-cluster read (plan,
    clusters) stays consistent. The kinds are listed concurrently: one round trip, not one
    per kind (measured: sequential reads were the largest part of a change's latency that a
    plain apply loop does not pay). The first failure, in ``resources`` order, is raised -
    except a refusal (``PermanentError``) to list a kind in ``optional``, which counts as
    none owned (a policy kind the config does not use and RBAC may not allow)."""
    selector = OWNED_SELECTOR
    namespace: str | None = None
    version: str | None = None
    if key is not None:
        selector += f",{SERVICE_LABEL}={service_label_value(key)}"
        namespace, version = key.namespace, "0"
    listed = await asyncio.gather(
        *(
            client.list(
                resource, namespace=namespace, label_selector=selector, resource_version=version
            )
            for resource in resources
        ),
        return_exceptions=True,
    )
    items: list[dict[str, Any]] = []
    for resource, result in zip(resources, listed, strict=True):
        if isinstance(result, PermanentError) and resource in optional:
            continue
        if isinstance(result, BaseException):
            raise result
        items.extend(result.items)
    return items


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
    ) -> None:
        """``leading``: whether this replica may write now (leader election)."""
        self._config = config
        self._leading = leading
        self._world = world
        self._clients = clients
        self._metrics = metrics
        self._status = status
        self._events_sent: set[tuple[Any, ...]] = set()
        self.imported: dict[ClusterId, set[ServiceKey]] = {c: set() for c in config.cluster_ids}
        """Per target: services whose objects exist there (as of the last reconcile)."""
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
        renders = [
            render_services(
                render_cluster(
                    desired,
                    target=target,
                    namespaces=views[target.name].namespaces,
                    config=self._config,
                ),
                desired.services,
                config=self._config,
                world=self._world,
            )
            for target in self._config.clusters
            if self._world.writable(target.name) and target.name in views
        ]
        # Targets are independent: write them concurrently, so a reconcile costs the slowest
        # target's round trips rather than the sum over all clusters.
        outcomes = await asyncio.gather(
            *(self._write_target(key, rendered, members, observed_at) for rendered, _ in renders)
        )
        for (rendered, withheld), outcome in zip(renders, outcomes, strict=True):
            tally.conditions.extend(rendered.conditions)
            tally.conditions.extend(withheld_conditions(key, withheld))
            tally.add(rendered.cluster, outcome)
        await self._send_conflict_events(desired)
        tally.conditions.extend(carried_refusals(old, tally.settled))
        self._update_status(key, views, desired, tally.conditions, tally.last_applied)
        return tally.result()

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
        for target, (outcome, withheld) in zip(targets, outcomes, strict=True):
            tally.conditions.extend(withheld_conditions(key, withheld))
            tally.add(target, outcome)
        tally.conditions.extend(carried_refusals(old, tally.settled))
        if tally.conditions:  # an egress namespace is listed only while something is wrong
            self._status.set_service(
                ServiceStatus(
                    key=key,
                    conditions=tuple(sorted(set(tally.conditions), key=condition_order)),
                    last_applied=tally.last_applied,
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
    ) -> tuple[ApplyOutcome, tuple[Withheld, ...]]:
        client = self._clients[target]
        try:
            sidecars = await list_sidecars(client, key.namespace)
        except FederatorError as exc:
            return list_failed(target, key, owned_resources(key), exc), ()
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
    ) -> ApplyOutcome:
        """List what meshfed owns for ``key`` in the target, diff, execute, track imports.
        ``extra``: objects of other kinds already read (an egress key's Sidecars)."""
        target = rendered.cluster
        client = self._clients[target]
        resources = owned_resources(key)
        if extra is not None:
            resources = tuple(r for r in resources if r.kind != "Sidecar")
        optional = optional_resources(self._config)
        try:
            actual = [*await list_owned(client, key, resources, optional), *(extra or [])]
        except FederatorError as exc:
            return list_failed(target, key, tuple(r for r in resources if r not in optional), exc)
        plan = diff_cluster(
            cluster=target, desired=rendered.manifests, actual=actual, members=members
        )
        if plan.actions and not self._leading():  # the fence, before each write batch
            error = NotLeaderError(f"writes to {target} for {key}: this replica stopped leading")
            return ApplyOutcome(retryable=error)
        outcome = await execute(plan, client=client)
        self._record(key, plan, outcome.written, observed_at)
        if is_egress_key(key):
            pass  # not a global service: reconciled from the config, not tracked as imported
        elif rendered.manifests or plan.kept or outcome.failed:
            self.imported[target].add(key)  # a failed prune is retried, not forgotten
        else:
            self.imported[target].discard(key)
        return outcome

    def _record(
        self,
        key: ServiceKey,
        plan: ClusterPlan,
        written: list[Any],
        observed_at: float | None,
    ) -> None:
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
        if written and observed_at is not None:
            self._metrics.propagation_latency.labels(target=plan.cluster).observe(
                max(0.0, time.monotonic() - observed_at)
            )

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
        conditions: list[ServiceCondition],
        last_applied: dict[ClusterId, datetime],
    ) -> None:
        service = desired.service(key)
        exporters = tuple(sorted(c for c, v in views.items() if key in v.exported))
        self.conflicts[key] = len(desired.conflicts)
        if not self.conflicts[key]:
            del self.conflicts[key]
        if service is None and not exporters and not any(key in s for s in self.imported.values()):
            self._status.remove_service(key)
            return
        self._status.set_service(
            ServiceStatus(
                key=key,
                exporting_clusters=exporters,
                endpoints={c: tuple(views[c].endpoints.get(key, ())) for c in exporters},
                conflicts=desired.conflicts,
                conditions=tuple(sorted(set(conditions), key=condition_order)),
                last_applied=last_applied,
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

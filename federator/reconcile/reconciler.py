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
from dataclasses import dataclass, field
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
    ObjectRef,
    ServiceKey,
)
from federator.core.render import RenderedCluster, render_cluster, service_label_value
from federator.errors import FederatorError, NotLeaderError, PermanentError, RetryableError
from federator.kube.client import DESTINATION_RULES, SERVICE_ENTRIES, KubeClient
from federator.metrics import FederatorMetrics
from federator.reconcile.apply import ApplyOutcome, Refusal, execute
from federator.status import (
    FORBIDDEN,
    REFUSED,
    ChangeEvent,
    RefusalCondition,
    ServiceCondition,
    ServiceStatus,
    StatusRegistry,
)

OWNED_SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"
MAX_REMEMBERED_EVENTS = 10_000
LISTED_KINDS = "ServiceEntry,DestinationRule"
"""``RefusalCondition.kind`` of a refused list of the owned objects."""


class World(Protocol):
    """What the reconciler reads about the clusters (``federator.reactor.world.CacheWorld``)."""

    def views(self, keys: Iterable[ServiceKey] | None) -> dict[ClusterId, ClusterView]: ...

    def service_object(self, cluster: ClusterId, key: ServiceKey) -> Mapping[str, Any] | None: ...

    def writable(self, cluster: ClusterId) -> bool:
        """The target's watches are synced and healthy."""
        ...


@dataclass(frozen=True, slots=True)
class Result:
    """How one reconcile went, over all targets: facts for the controller, not instructions.

    ``Result()`` is a full success."""

    retryable: RetryableError | None = None
    """The first transient failure (some target was not fully written)."""
    refused: PermanentError | None = None
    """The first request a target refused for good."""
    forbidden: bool = False
    """Some refusal was RBAC's (403): it may be fixed any time, unlike an invalid object."""
    retry_after: float = 0.0
    """The largest Retry-After a server asked for."""


async def list_owned(client: KubeClient, key: ServiceKey | None = None) -> list[dict[str, Any]]:
    """Objects meshfed owns in a cluster (for one service, or all).

    For one service the read is namespaced and served from the apiserver's watch cache
    (``resourceVersion=0``): a stale answer is safe because applies are server-side applies
    (idempotent) and deletes carry uid/resourceVersion preconditions, and it keeps a
    reconcile from costing a consistent etcd LIST per target. The whole-cluster read (plan,
    clusters) stays consistent."""
    selector = OWNED_SELECTOR
    namespace: str | None = None
    version: str | None = None
    if key is not None:
        selector += f",{SERVICE_LABEL}={service_label_value(key)}"
        namespace, version = key.namespace, "0"
    items: list[dict[str, Any]] = []
    for resource in (SERVICE_ENTRIES, DESTINATION_RULES):
        listed = await client.list(
            resource, namespace=namespace, label_selector=selector, resource_version=version
        )
        items.extend(listed.items)
    return items


def refusal_condition(key: ServiceKey, refusal: Refusal) -> RefusalCondition:
    """The status condition reporting ``refusal`` on ``key`` (pure)."""
    ref = refusal.ref
    return RefusalCondition(
        key=key,
        cluster=ref.cluster,
        reason=FORBIDDEN if refusal.forbidden else REFUSED,
        verb=refusal.verb,
        kind=ref.kind,
        name=f"{ref.namespace}/{ref.name}" if ref.name else ref.namespace,
        message=refusal.message,
    )


def carried_refusals(old: ServiceStatus | None, settled: set[ClusterId]) -> list[RefusalCondition]:
    """The refusals of the last status in targets this reconcile did not settle (pure)."""
    if old is None:
        return []
    return [
        c for c in old.conditions if isinstance(c, RefusalCondition) and c.cluster not in settled
    ]


@dataclass(slots=True)
class Tally:
    """The targets' outcomes of one reconcile, folded into what decides status and requeue."""

    key: ServiceKey
    conditions: list[ServiceCondition] = field(default_factory=list)
    last_applied: dict[ClusterId, datetime] = field(default_factory=dict)
    retryable: RetryableError | None = None
    permanent: PermanentError | None = None
    retry_after: float = 0.0
    denied: bool = False
    """Some target answered 403 Forbidden."""
    settled: set[ClusterId] = field(default_factory=set)
    """Targets whose earlier refusals this reconcile replaces: it got refusals there, or every
    request there succeeded. A target that only failed transiently keeps its old ones."""

    def add(self, target: ClusterId, outcome: ApplyOutcome) -> None:
        if outcome.written:
            self.last_applied[target] = datetime.now(UTC)
        self.conditions.extend(refusal_condition(self.key, r) for r in outcome.refused)
        self.denied = self.denied or any(r.forbidden for r in outcome.refused)
        if outcome.refused or outcome.retryable is None:
            self.settled.add(target)
        self.retryable = self.retryable or outcome.retryable
        self.permanent = self.permanent or outcome.permanent
        self.retry_after = max(self.retry_after, outcome.retry_after)


def condition_order(condition: ServiceCondition) -> tuple[str, str, str]:
    return (condition.cluster, str(condition.reason), condition.message)


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
        views = self._world.views([key])
        desired = compute_desired(config=self._config, views=views, keys=[key])
        members = {c: (views[c].trusted if c in views else False) for c in self._config.cluster_ids}
        old = self._status.service(key)
        tally = Tally(key=key, conditions=list(desired.conditions))
        if old is not None:
            tally.last_applied.update(old.last_applied)
        renders = [
            render_cluster(
                desired,
                target=target,
                namespaces=views[target.name].namespaces,
                config=self._config,
            )
            for target in self._config.clusters
            if self._world.writable(target.name) and target.name in views
        ]
        # Targets are independent: write them concurrently, so a reconcile costs the slowest
        # target's round trips rather than the sum over all clusters.
        outcomes = await asyncio.gather(
            *(self._write_target(key, rendered, members, observed_at) for rendered in renders)
        )
        for rendered, outcome in zip(renders, outcomes, strict=True):
            tally.conditions.extend(rendered.conditions)
            tally.add(rendered.cluster, outcome)
        await self._send_conflict_events(desired)
        tally.conditions.extend(carried_refusals(old, tally.settled))
        self._update_status(key, views, desired, tally.conditions, tally.last_applied)
        return Result(
            retryable=tally.retryable,
            refused=tally.permanent,
            forbidden=tally.denied,
            retry_after=tally.retry_after,
        )

    async def _write_target(
        self,
        key: ServiceKey,
        rendered: RenderedCluster,
        members: Mapping[ClusterId, bool],
        observed_at: float | None,
    ) -> ApplyOutcome:
        """List what meshfed owns for ``key`` in the target, diff, execute, track imports."""
        target = rendered.cluster
        client = self._clients[target]
        try:
            actual = await list_owned(client, key)
        except RetryableError as exc:
            return ApplyOutcome(retryable=exc, retry_after=exc.retry_after)
        except PermanentError as exc:
            ref = ObjectRef(target, LISTED_KINDS, key.namespace, "")
            return ApplyOutcome(refused=[Refusal.of(ref, "list", exc)], permanent=exc)
        plan = diff_cluster(
            cluster=target, desired=rendered.manifests, actual=actual, members=members
        )
        if plan.actions and not self._leading():  # the fence, before each write batch
            error = NotLeaderError(f"writes to {target} for {key}: this replica stopped leading")
            return ApplyOutcome(retryable=error)
        outcome = await execute(plan, client=client)
        self._record(key, plan, outcome.written, observed_at)
        if rendered.manifests or plan.kept or outcome.failed:
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
        rendered = render_cluster(
            desired, target=target, namespaces=views[target.name].namespaces, config=config
        )
        actual = await list_owned(clients[target.name])
        plans.append(
            diff_cluster(
                cluster=target.name, desired=rendered.manifests, actual=actual, members=members
            )
        )
    return Plan(clusters=tuple(plans))

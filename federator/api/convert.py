"""Status model (``federator.status``) <-> ``meshfed.v1`` protobuf messages. Pure.

Kept apart from the server so every mapping - enums by name with an ``OTHER`` fallback,
unset timestamps, endpoint lists only on request, plan filtering - is unit-tested without a
socket, and the servicer stays a thin layer of request validation and error mapping.

Enums map by *name*: ``Reason.PORT_CONFLICT`` -> ``CONDITION_REASON_PORT_CONFLICT``,
``Op.KEEP`` -> ``PLAN_OP_KEEP``. A value the proto does not know yet becomes ``..._OTHER``
and keeps its text in a string field, so a newer federator never breaks an older client.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from federator.api._generated.meshfed.v1 import federation_pb2 as pb
from federator.core.desired import host_for
from federator.core.diff import Action, ClusterPlan, Op, Plan
from federator.core.drills.summary import summarize
from federator.core.election import Leadership
from federator.core.model import SERVICE_ANNOTATION, ClusterId, Endpoint, ServiceKey
from federator.errors import InvalidRequestError
from federator.status import ChangeEvent, ClusterStatus, ServiceStatus

_EVENT_TYPES = {
    "create": "EVENT_TYPE_CREATED",
    "update": "EVENT_TYPE_UPDATED",
    "delete": "EVENT_TYPE_DELETED",
}


def _enum_name(prefix: str, name: str, known: Iterable[str]) -> str:
    wanted = f"{prefix}_{name.upper()}"
    return wanted if wanted in set(known) else f"{prefix}_OTHER"


def reason_name(reason: str) -> str:
    """The ``ConditionReason`` value name of a ``federator.core.model.Reason`` (or its text)."""
    snake = "".join(f"_{ch}" if ch.isupper() else ch for ch in reason).lstrip("_")
    return _enum_name("CONDITION_REASON", snake, pb.ConditionReason.keys())


def plan_op_name(op: Op) -> str:
    return _enum_name("PLAN_OP", op.name, pb.PlanOp.keys())


def event_type_name(op: str) -> str:
    return _EVENT_TYPES.get(op, "EVENT_TYPE_OTHER")


def key_to_pb(key: ServiceKey) -> pb.ServiceKey:
    return pb.ServiceKey(namespace=key.namespace, name=key.name)


def key_from_pb(key: pb.ServiceKey) -> ServiceKey:
    """A request's service key; ``InvalidRequestError`` unless both parts are set."""
    if not key.namespace or not key.name:
        raise InvalidRequestError(
            f'service key "{key.namespace}/{key.name}" needs both a namespace and a name'
        )
    return ServiceKey(namespace=key.namespace, name=key.name)


def cluster_to_pb(cluster: ClusterStatus) -> pb.ClusterStatus:
    msg = pb.ClusterStatus(
        name=cluster.name,
        reachable=cluster.reachable,
        synced=cluster.synced,
        stale=cluster.stale,
        exported_services=cluster.exported_count,
        imported_services=cluster.imported_count,
        error=cluster.error or "",
        gateway=pb.GatewayHealth(
            state=f"STATE_{cluster.gateway.state.name}",
            address=cluster.gateway.address,
            consecutive_failures=cluster.gateway.failures,
            error=cluster.gateway.error,
        ),
    )
    if cluster.staleness_seconds is not None:
        msg.staleness_seconds = cluster.staleness_seconds
    if cluster.gateway.since is not None:
        msg.gateway.since.FromDatetime(cluster.gateway.since)
    if cluster.last_sync_time is not None:
        msg.last_sync_time.FromDatetime(cluster.last_sync_time)
    return msg


def endpoint_to_pb(endpoint: Endpoint) -> pb.Endpoint:
    return pb.Endpoint(
        address=endpoint.address,
        ready=endpoint.ready,
        zone=endpoint.zone or "",
        ports=dict(endpoint.ports),
    )


def service_to_pb(
    service: ServiceStatus,
    *,
    host_suffix: str,
    include_endpoints: bool,
    clusters: Mapping[ClusterId, ClusterStatus] | None = None,
) -> pb.ServiceStatus:
    """One global service; ``include_endpoints`` adds the endpoint lists (counts always).
    ``clusters`` (by name) say whether each exporter's endpoints are current or the last
    known ones of a stale cluster; an exporter whose cluster is unknown counts as current."""
    clusters = clusters or {}
    msg = pb.ServiceStatus(key=key_to_pb(service.key), host=host_for(service.key, host_suffix))
    for cluster in sorted(set(service.exporting_clusters) | set(service.endpoints)):
        endpoints = sorted(service.endpoints.get(cluster, ()), key=lambda e: e.address)
        state = clusters.get(cluster)
        stale = state is not None and state.stale
        exporter = msg.exporters.add(
            cluster=cluster,
            ready_endpoints=sum(1 for e in endpoints if e.ready),
            total_endpoints=len(endpoints),
            freshness="ENDPOINTS_FRESHNESS_STALE" if stale else "ENDPOINTS_FRESHNESS_CURRENT",
            staleness_seconds=(state.staleness_seconds or 0.0) if state is not None else 0.0,
        )
        if include_endpoints:
            exporter.endpoints.extend(endpoint_to_pb(e) for e in endpoints)
    for conflict in service.conflicts:
        msg.conflicts.add(
            reason=reason_name(conflict.reason),
            reason_text=str(conflict.reason),
            loser=conflict.loser,
            winner=conflict.winner,
            message=conflict.message,
        )
    for cluster in sorted({*service.last_applied, *service.last_propagation}):
        target = msg.targets.add(cluster=cluster)
        if cluster in service.last_applied:
            target.last_applied_time.FromDatetime(service.last_applied[cluster])
        if cluster in service.last_propagation:
            target.last_propagation_seconds = service.last_propagation[cluster]
    for condition in service.conditions:
        msg.conditions.add(
            reason=reason_name(condition.reason),
            reason_text=str(condition.reason),
            cluster=condition.cluster,
            message=condition.message,
        )
    return msg


def status_to_pb(
    *,
    ready: bool,
    clusters: Sequence[ClusterStatus],
    services: Sequence[ServiceStatus],
    now: datetime,
    leadership: Leadership | None = None,
) -> pb.GetStatusResponse:
    msg = pb.GetStatusResponse(
        ready=ready,
        clusters=[cluster_to_pb(c) for c in clusters],
        services=len(services),
        conflicts=sum(len(s.conflicts) for s in services),
        leader_election=leadership_to_pb(leadership or Leadership()),
    )
    applied = [when for s in services for when in s.last_applied.values()]
    if applied:
        msg.last_applied_time.FromDatetime(max(applied))
    msg.observed_time.FromDatetime(now)
    return msg


def leadership_to_pb(leadership: Leadership) -> pb.LeaderElection:
    msg = pb.LeaderElection(
        enabled=leadership.enabled,
        leader=leadership.leader,
        identity=leadership.identity,
        holder=leadership.holder,
        transitions=leadership.transitions,
    )
    if leadership.renew_time is not None:
        msg.renew_time.FromDatetime(leadership.renew_time)
    return msg


def action_service(action: Action) -> ServiceKey | None:
    """The global service an action's object belongs to, from its ``meshfed.io/service``."""
    for manifest in (action.desired, action.actual):
        if manifest is None:
            continue
        raw = ((manifest.get("metadata") or {}).get("annotations") or {}).get(SERVICE_ANNOTATION)
        if isinstance(raw, str) and raw.count("/") == 1:
            namespace, name = raw.split("/")
            if namespace and name:
                return ServiceKey(namespace=namespace, name=name)
    return None


def filter_plan(
    plan: Plan,
    *,
    services: frozenset[ServiceKey] = frozenset(),
    clusters: frozenset[ClusterId] = frozenset(),
) -> Plan:
    """The part of ``plan`` about some services and/or target clusters (empty set: all).

    ``unchanged`` counts cannot be split by service, so they are reported as 0 when a service
    filter is given.
    """
    kept: list[ClusterPlan] = []
    for cp in plan.clusters:
        if clusters and cp.cluster not in clusters:
            continue
        if services:
            actions = tuple(a for a in cp.actions if action_service(a) in services)
            kept.append(ClusterPlan(cluster=cp.cluster, actions=actions, unchanged=0))
        else:
            kept.append(cp)
    return Plan(clusters=tuple(kept))


def planned_services(plan: Plan) -> frozenset[ServiceKey]:
    return frozenset(
        key for cp in plan.clusters for a in cp.actions if (key := action_service(a)) is not None
    )


def plan_to_pb(plan: Plan) -> pb.PlanResponse:
    msg = pb.PlanResponse(noop=plan.is_noop, text=plan.render_text() if plan.clusters else "")
    for cp in sorted(plan.clusters, key=lambda c: c.cluster):
        cmsg = msg.clusters.add(cluster=cp.cluster, unchanged=cp.unchanged)
        for action in cp.actions:
            amsg = cmsg.actions.add(
                op=plan_op_name(action.op),
                kind=action.ref.kind,
                namespace=action.ref.namespace,
                name=action.ref.name,
                reason=action.reason,
            )
            key = action_service(action)
            if key is not None:
                amsg.service.CopyFrom(key_to_pb(key))
    return msg


def event_to_pb(event: ChangeEvent, *, dropped_before: int) -> pb.Event:
    msg = pb.Event(
        sequence=event.sequence,
        type=event_type_name(event.op),
        op=event.op,
        cluster=event.cluster,
        service=key_to_pb(event.key),
        kind=event.kind,
        name=event.name,
        dropped_before=dropped_before,
    )
    msg.time.FromDatetime(event.time)
    return msg


def services_in(services: Iterable[ServiceStatus], *, namespace: str) -> tuple[ServiceStatus, ...]:
    return tuple(s for s in services if not namespace or s.key.namespace == namespace)


DRILL_EVENT_TYPES = {
    "ADDED": "DRILL_EVENT_TYPE_ADDED",
    "MODIFIED": "DRILL_EVENT_TYPE_MODIFIED",
    "DELETED": "DRILL_EVENT_TYPE_DELETED",
}


def drill_json(obj: Mapping[str, Any]) -> str:
    """The Drill object as JSON without ``managedFields`` (bookkeeping nobody reads)."""
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "managedFields"}
    return json.dumps({**obj, "metadata": meta}, sort_keys=True, default=str)


def drill_to_pb(obj: Mapping[str, Any]) -> pb.DrillSummary:
    """A Drill object as read from the home cluster (``federator.core.drills.summary``)."""
    s = summarize(obj)
    msg = pb.DrillSummary(
        namespace=s.namespace,
        name=s.name,
        phase=s.phase,
        reason=s.reason,
        step=s.step,
        step_name=s.step_name,
        steps=s.steps,
        verdict=s.verdict,
        targets=list(s.targets),
        applied=list(s.applied),
        services=[key_to_pb(k) for k in s.services],
        halt=s.halt,
        error=s.error,
        object_json=drill_json(obj),
    )
    if s.created is not None:
        msg.created_time.FromDatetime(s.created)
    if s.started is not None:
        msg.started_time.FromDatetime(s.started)
    return msg


def drill_event_to_pb(kind: str, obj: Mapping[str, Any]) -> pb.DrillEvent:
    return pb.DrillEvent(
        type=DRILL_EVENT_TYPES.get(kind, "DRILL_EVENT_TYPE_UNSPECIFIED"), drill=drill_to_pb(obj)
    )

"""Pure shaping of the federator's answers into the JSON the pages draw.

Protobuf messages in, plain dicts out; no I/O, so every rule a page relies on (what "healthy"
means, how the service x cluster matrix is filled, what a cell's weight is) is unit-tested here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from federator.api._generated.meshfed.v1 import federation_pb2 as pb

GATEWAY_STATES = {
    pb.GatewayHealth.STATE_UP: "up",
    pb.GatewayHealth.STATE_DOWN: "down",
    pb.GatewayHealth.STATE_UNKNOWN: "unknown",
    pb.GatewayHealth.STATE_UNSPECIFIED: "unknown",
}


def iso(ts: Timestamp) -> str | None:
    """RFC 3339 in UTC, or None for an unset timestamp."""
    if not ts.seconds and not ts.nanos:
        return None
    return ts.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def cluster_health(c: pb.ClusterStatus) -> str:
    """The word a badge shows: healthy, stale, unreachable, syncing or degraded."""
    if not c.reachable:
        return "stale" if c.stale else "unreachable"
    if not c.synced:
        return "syncing"
    if c.gateway.state == pb.GatewayHealth.STATE_DOWN:
        return "degraded"
    return "healthy"


def cluster_json(c: pb.ClusterStatus, region: str) -> dict[str, Any]:
    return {
        "name": c.name,
        "region": region,
        "health": cluster_health(c),
        "reachable": c.reachable,
        "synced": c.synced,
        "stale": c.stale,
        "staleness_s": c.staleness_seconds if c.HasField("staleness_seconds") else None,
        "last_sync": iso(c.last_sync_time),
        "exported": c.exported_services,
        "imported": c.imported_services,
        "error": c.error,
        "gateway": {
            "state": GATEWAY_STATES.get(c.gateway.state, "unknown"),
            "address": c.gateway.address,
            "failures": c.gateway.consecutive_failures,
            "error": c.gateway.error,
            "since": iso(c.gateway.since),
        },
    }


def link_state(a: Mapping[str, Any], b: Mapping[str, Any]) -> str:
    """A link between two clusters is as good as its worse end: ``up``, ``down`` or ``unknown``."""
    states = {a["gateway"]["state"], b["gateway"]["state"]}
    if not (a["reachable"] and b["reachable"]) or "down" in states:
        return "down"
    if states == {"up"}:
        return "up"
    return "unknown"


def overview_json(
    status: pb.GetStatusResponse, regions: Mapping[str, str], topology: str
) -> dict[str, Any]:
    """Clusters grouped by region, the links between them, the federator's own state."""
    clusters = [cluster_json(c, regions.get(c.name, "")) for c in status.clusters]
    by_region: dict[str, list[str]] = {}
    for c in clusters:
        by_region.setdefault(c["region"] or "(no region)", []).append(c["name"])
    links = [
        {"a": a["name"], "b": b["name"], "via": topology, "state": link_state(a, b)}
        for i, a in enumerate(clusters)
        for b in clusters[i + 1 :]
    ]
    election = status.leader_election
    return {
        "ready": status.ready,
        "services": status.services,
        "conflicts": status.conflicts,
        "last_applied": iso(status.last_applied_time),
        "observed": iso(status.observed_time),
        "leader": {
            "enabled": election.enabled,
            "leader": election.leader,
            "identity": election.identity,
            "holder": election.holder,
            "transitions": election.transitions,
        },
        "regions": [{"name": r, "clusters": names} for r, names in sorted(by_region.items())],
        "clusters": clusters,
        "links": links,
    }


def _cell(
    service: pb.ServiceStatus,
    cluster: str,
    total_ready: int,
    applied: Mapping[str, str | None],
    propagation: Mapping[str, float],
) -> dict[str, Any]:
    exporter = next((e for e in service.exporters if e.cluster == cluster), None)
    local_ready = exporter.ready_endpoints if exporter else 0
    cell: dict[str, Any] = {
        "exported": exporter is not None,
        "local_ready": local_ready,
        "local_total": exporter.total_endpoints if exporter else 0,
        "remote_ready": total_ready - local_ready,
        # Every endpoint weighs the same in a ServiceEntry, so an exporter's share of the
        # traffic sent to the global host is its share of the ready endpoints.
        "weight": round(local_ready / total_ready, 4) if exporter and total_ready else 0.0,
        "stale": bool(exporter and exporter.freshness == pb.ENDPOINTS_FRESHNESS_STALE),
        "applied": applied.get(cluster),
        # Seconds from a watch seeing the service's last change to meshfed's write for it
        # landing here; None until a write followed an observed change.
        "propagation_s": propagation.get(cluster),
    }
    return cell


def service_row(service: pb.ServiceStatus, clusters: Sequence[str]) -> dict[str, Any]:
    """One matrix row: per-cluster cells plus the service's conflicts and conditions."""
    total_ready = sum(e.ready_endpoints for e in service.exporters)
    applied = {t.cluster: iso(t.last_applied_time) for t in service.targets}
    propagation = {
        t.cluster: t.last_propagation_seconds
        for t in service.targets
        if t.HasField("last_propagation_seconds")
    }
    return {
        "namespace": service.key.namespace,
        "name": service.key.name,
        "host": service.host,
        "exporters": [e.cluster for e in service.exporters],
        "conflicts": [
            {"reason": c.reason_text, "winner": c.winner, "loser": c.loser, "message": c.message}
            for c in service.conflicts
        ],
        "conditions": [
            {"reason": c.reason_text, "cluster": c.cluster, "message": c.message}
            for c in service.conditions
        ],
        "cells": {
            name: _cell(service, name, total_ready, applied, propagation) for name in clusters
        },
    }


def services_json(
    services: Iterable[pb.ServiceStatus],
    clusters: Sequence[str],
    propagation: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """The service x cluster matrix; ``propagation``: mean seconds per target cluster."""
    return {
        "clusters": list(clusters),
        "propagation_s": dict(propagation or {}),
        "services": [service_row(s, clusters) for s in services],
    }


def endpoints_json(service: pb.ServiceStatus) -> list[dict[str, Any]]:
    return [
        {
            "cluster": e.cluster,
            "address": ep.address,
            "ready": ep.ready,
            "zone": ep.zone,
            "ports": dict(ep.ports),
        }
        for e in service.exporters
        for ep in e.endpoints
    ]


def event_json(event: pb.Event) -> dict[str, Any]:
    return {
        "sequence": event.sequence,
        "time": iso(event.time),
        "op": event.op,
        "cluster": event.cluster,
        "namespace": event.service.namespace,
        "service": event.service.name,
        "kind": event.kind,
        "name": event.name,
        "dropped_before": event.dropped_before,
    }


def drill_json(d: pb.DrillSummary) -> dict[str, Any]:
    return {
        "namespace": d.namespace,
        "name": d.name,
        "phase": d.phase,
        "reason": d.reason,
        "step": d.step,
        "step_name": d.step_name,
        "steps": d.steps,
        "verdict": d.verdict,
        "targets": list(d.targets),
        "applied": list(d.applied),
        "services": [f"{k.namespace}/{k.name}" for k in d.services],
        "halt": d.halt,
        "created": iso(d.created_time),
        "started": iso(d.started_time),
        "error": d.error,
    }

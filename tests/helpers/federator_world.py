"""A small federation status, shared by the status API's unit and integration tests.

c1 and c2 are synced and export ``default/reviews`` (c2 loses a port conflict); c2 also
exports ``shop/cart``; c3 is unreachable and stale. The plan is a real one from the pure core:
c3 lacks both reviews objects (create) and still holds ``shop/old`` (delete), c1 is in sync.
"""

from __future__ import annotations

import copy
from datetime import timedelta

from federator.core.diff import ClusterPlan, Plan, diff_cluster
from federator.core.model import (
    SERVICE_ANNOTATION,
    SOURCES_ANNOTATION,
    Condition,
    ConflictReport,
    Endpoint,
    Reason,
    ServiceKey,
)
from federator.core.render import SERVICE_ENTRY, ref_of
from federator.status import ChangeEvent, ClusterStatus, ServiceStatus, StatusRegistry
from tests.helpers.federator_builders import T0, acceptance_views, cid, make_config, manifests_for

REVIEWS = ServiceKey("default", "reviews")
CART = ServiceKey("shop", "cart")
OLD = ServiceKey("shop", "old")
HOST_SUFFIX = "clusterset.local"

CLUSTERS = (
    ClusterStatus(
        name=cid("c1"),
        reachable=True,
        synced=True,
        stale=False,
        last_sync_time=T0,
        exported_count=1,
        imported_count=2,
    ),
    ClusterStatus(
        name=cid("c2"),
        reachable=True,
        synced=True,
        stale=False,
        last_sync_time=T0 + timedelta(seconds=5),
        exported_count=2,
        imported_count=1,
    ),
    ClusterStatus(name=cid("c3"), error="dial tcp 127.0.0.1:6443: connection refused"),
)

PORT_CONFLICT = ConflictReport(
    key=REVIEWS,
    loser=cid("c2"),
    winner=cid("c1"),
    reason=Reason.PORT_CONFLICT,
    message="default/reviews in c2 defines port 9080 differently; the older one is used",
)
SERVICES = (
    ServiceStatus(
        key=REVIEWS,
        exporting_clusters=(cid("c1"), cid("c2")),
        endpoints={
            cid("c1"): (
                Endpoint.of("10.1.0.2", {"http": 9080}, zone="a-1"),
                Endpoint.of("10.1.0.1", {"http": 9080}, zone="a-1"),
            ),
            cid("c2"): (
                Endpoint.of("10.2.0.1", {"http": 9080}),
                Endpoint.of("10.2.0.2", {"http": 9080}, ready=False),
            ),
        },
        conflicts=(PORT_CONFLICT,),
        conditions=(
            Condition(REVIEWS, cid("c3"), Reason.NAMESPACE_MISSING, "no namespace default in c3"),
        ),
        last_applied={
            cid("c2"): T0 + timedelta(minutes=2),
            cid("c1"): T0 + timedelta(minutes=1),
            cid("c3"): T0 + timedelta(minutes=3),
        },
    ),
    ServiceStatus(
        key=CART,
        exporting_clusters=(cid("c2"),),
        endpoints={cid("c2"): (Endpoint.of("10.2.1.1", {"http": 8080}),)},
    ),
)


def world_plan() -> Plan:
    config = make_config()
    views = acceptance_views()
    desired = manifests_for(config, views, "c3")
    orphan = copy.deepcopy(next(m for m in desired if m["kind"] == SERVICE_ENTRY))
    orphan["metadata"]["name"] = "meshfed-old"
    orphan["metadata"]["namespace"] = OLD.namespace
    orphan["metadata"]["annotations"][SERVICE_ANNOTATION] = str(OLD)
    orphan["metadata"]["annotations"][SOURCES_ANNOTATION] = "c1"
    c3 = diff_cluster(
        cluster=cid("c3"),
        desired={ref_of(m, cid("c3")): m for m in desired},
        actual=[orphan],
        members={c: True for c in config.cluster_ids},
    )
    return Plan(clusters=(ClusterPlan(cluster=cid("c1"), unchanged=2), c3))


def change(sequence: int, *, key: ServiceKey = REVIEWS, op: str = "update") -> ChangeEvent:
    return ChangeEvent(
        sequence=sequence,
        time=T0 + timedelta(seconds=sequence),
        cluster=cid("c3"),
        key=key,
        kind=SERVICE_ENTRY,
        name=f"meshfed-{key.name}",
        op=op,
    )


def populated_registry() -> StatusRegistry:
    registry = StatusRegistry(clusters=tuple(c.name for c in CLUSTERS))
    for cluster in CLUSTERS:
        registry.set_cluster(cluster)
    for service in SERVICES:
        registry.set_service(service)
    return registry

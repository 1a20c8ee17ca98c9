"""Status model -> meshfed.v1 messages: enums, timestamps, endpoints, plan filtering."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from federator.api import convert
from federator.api._generated.meshfed.v1 import federation_pb2 as pb
from federator.core.diff import Op
from federator.core.election import Leadership
from federator.core.model import Reason, ServiceKey
from federator.core.probing import GatewayHealth, GatewayState
from federator.errors import InvalidRequestError
from federator.status import ClusterStatus
from tests.helpers.federator_builders import T0, cid
from tests.helpers.federator_world import (
    CART,
    CLUSTERS,
    HOST_SUFFIX,
    OLD,
    REVIEWS,
    SERVICES,
    change,
    world_plan,
)


@pytest.mark.parametrize("reason", [pytest.param(r, id=r.value) for r in Reason])
def test_every_reason_has_its_own_proto_value(reason: Reason) -> None:
    name = convert.reason_name(reason)
    assert name != "CONDITION_REASON_OTHER"
    assert pb.ConditionReason.Value(name) > 0


@pytest.mark.parametrize("op", [pytest.param(o, id=o.value) for o in Op])
def test_every_plan_op_has_its_own_proto_value(op: Op) -> None:
    assert convert.plan_op_name(op) == f"PLAN_OP_{op.name}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("SomethingNew", "CONDITION_REASON_OTHER", id="unknown-reason"),
        pytest.param("GatewayUnhealthy", "CONDITION_REASON_GATEWAY_UNHEALTHY", id="camel-case"),
    ],
)
def test_reason_names(text: str, expected: str) -> None:
    assert convert.reason_name(text) == expected


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        pytest.param("create", pb.EVENT_TYPE_CREATED, id="create"),
        pytest.param("update", pb.EVENT_TYPE_UPDATED, id="update"),
        pytest.param("delete", pb.EVENT_TYPE_DELETED, id="delete"),
        pytest.param("patch", pb.EVENT_TYPE_OTHER, id="unknown-op"),
    ],
)
def test_event_types(op: str, expected: int) -> None:
    msg = convert.event_to_pb(change(7, op=op), dropped_before=3)
    assert msg.type == expected
    assert msg.op == op
    assert (msg.sequence, msg.dropped_before, msg.cluster) == (7, 3, "c3")
    assert (msg.service.namespace, msg.service.name) == ("default", "reviews")
    assert msg.time.ToDatetime().replace(tzinfo=T0.tzinfo) == T0 + timedelta(seconds=7)


@pytest.mark.parametrize(
    ("cluster", "expected"),
    [
        pytest.param(
            CLUSTERS[0],
            {"reachable": True, "stale": False, "has_sync": True, "error": ""},
            id="synced",
        ),
        pytest.param(
            CLUSTERS[2],
            {"reachable": False, "stale": True, "has_sync": False, "error": "connection refused"},
            id="unreachable-never-synced",
        ),
    ],
)
def test_cluster(cluster: ClusterStatus, expected: dict[str, object]) -> None:
    msg = convert.cluster_to_pb(cluster)
    assert msg.name == cluster.name
    assert msg.reachable is expected["reachable"]
    assert msg.stale is expected["stale"]
    assert msg.HasField("last_sync_time") is expected["has_sync"]
    assert str(expected["error"]) in msg.error
    assert (msg.exported_services, msg.imported_services) == (
        cluster.exported_count,
        cluster.imported_count,
    )


@pytest.mark.parametrize(
    "include_endpoints", [pytest.param(True, id="with-endpoints"), pytest.param(False, id="counts")]
)
def test_service(include_endpoints: bool) -> None:
    msg = convert.service_to_pb(
        SERVICES[0], host_suffix=HOST_SUFFIX, include_endpoints=include_endpoints
    )
    assert msg.host == "reviews.default.svc.clusterset.local"
    counts = [(e.cluster, e.ready_endpoints, e.total_endpoints) for e in msg.exporters]
    assert counts == [("c1", 2, 2), ("c2", 1, 2)]
    addresses = [[ep.address for ep in e.endpoints] for e in msg.exporters]
    if include_endpoints:
        assert addresses == [["10.1.0.1", "10.1.0.2"], ["10.2.0.1", "10.2.0.2"]]
        assert dict(msg.exporters[0].endpoints[0].ports) == {"http": 9080}
        assert msg.exporters[0].endpoints[0].zone == "a-1"
        assert msg.exporters[1].endpoints[1].ready is False
    else:
        assert addresses == [[], []]
    (conflict,) = msg.conflicts
    assert (conflict.reason, conflict.reason_text) == (
        pb.CONDITION_REASON_PORT_CONFLICT,
        "PortConflict",
    )
    assert (conflict.loser, conflict.winner) == ("c2", "c1")
    assert [t.cluster for t in msg.targets] == ["c1", "c2", "c3"]
    (condition,) = msg.conditions
    assert (condition.reason, condition.cluster) == (pb.CONDITION_REASON_NAMESPACE_MISSING, "c3")


def test_service_never_applied_has_no_targets() -> None:
    msg = convert.service_to_pb(SERVICES[1], host_suffix="mesh.example", include_endpoints=False)
    assert msg.host == "cart.shop.svc.mesh.example"
    assert list(msg.targets) == []
    assert [e.cluster for e in msg.exporters] == ["c2"]


def test_status_summary() -> None:
    now = T0 + timedelta(hours=1)
    msg = convert.status_to_pb(ready=True, clusters=CLUSTERS, services=SERVICES, now=now)
    assert msg.ready
    assert [c.name for c in msg.clusters] == ["c1", "c2", "c3"]
    assert (msg.services, msg.conflicts) == (2, 1)
    assert msg.last_applied_time.ToDatetime().replace(tzinfo=T0.tzinfo) == T0 + timedelta(minutes=3)
    assert msg.observed_time.ToDatetime().replace(tzinfo=T0.tzinfo) == now


def test_status_without_services_has_no_last_applied() -> None:
    msg = convert.status_to_pb(ready=False, clusters=(), services=(), now=T0)
    assert not msg.ready
    assert not msg.HasField("last_applied_time")


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(pb.ServiceKey(namespace="default"), id="no-name"),
        pytest.param(pb.ServiceKey(name="reviews"), id="no-namespace"),
        pytest.param(pb.ServiceKey(), id="empty"),
    ],
)
def test_malformed_keys_are_invalid_requests(key: pb.ServiceKey) -> None:
    with pytest.raises(InvalidRequestError, match="namespace and a name"):
        convert.key_from_pb(key)


def test_key_round_trip() -> None:
    assert convert.key_from_pb(convert.key_to_pb(REVIEWS)) == REVIEWS


def _actions(msg: pb.PlanResponse) -> list[tuple[str, int, str, str, str]]:
    return [
        (c.cluster, a.op, a.kind, a.name, f"{a.service.namespace}/{a.service.name}")
        for c in msg.clusters
        for a in c.actions
    ]


@pytest.mark.parametrize(
    ("services", "clusters", "expected", "unchanged"),
    [
        pytest.param(
            frozenset(),
            frozenset(),
            [
                ("c3", pb.PLAN_OP_CREATE, "DestinationRule", "meshfed-reviews", "default/reviews"),
                ("c3", pb.PLAN_OP_CREATE, "ServiceEntry", "meshfed-reviews", "default/reviews"),
                ("c3", pb.PLAN_OP_DELETE, "ServiceEntry", "meshfed-old", "shop/old"),
            ],
            {"c1": 2, "c3": 0},
            id="whole-plan",
        ),
        pytest.param(
            frozenset({OLD}),
            frozenset(),
            [("c3", pb.PLAN_OP_DELETE, "ServiceEntry", "meshfed-old", "shop/old")],
            {"c1": 0, "c3": 0},
            id="one-service",
        ),
        pytest.param(
            frozenset(),
            frozenset({cid("c1")}),
            [],
            {"c1": 2},
            id="one-cluster",
        ),
        pytest.param(frozenset({CART}), frozenset(), [], {"c1": 0, "c3": 0}, id="no-actions"),
    ],
)
def test_plan(
    services: frozenset[ServiceKey],
    clusters: frozenset[str],
    expected: list[tuple[str, int, str, str, str]],
    unchanged: dict[str, int],
) -> None:
    plan = convert.filter_plan(
        world_plan(), services=services, clusters=frozenset(cid(c) for c in clusters)
    )
    msg = convert.plan_to_pb(plan)
    assert _actions(msg) == expected
    assert {c.cluster: c.unchanged for c in msg.clusters} == unchanged
    assert msg.noop is (not expected)
    assert ("meshfed-old" in msg.text) is any(e[3] == "meshfed-old" for e in expected)


def test_planned_services_come_from_the_service_annotation() -> None:
    assert convert.planned_services(world_plan()) == frozenset({REVIEWS, OLD})


def test_services_in_namespace() -> None:
    assert [s.key for s in convert.services_in(SERVICES, namespace="shop")] == [CART]
    assert len(convert.services_in(SERVICES, namespace="")) == 2


@pytest.mark.parametrize(
    ("stale", "endpoints", "freshness", "ready"),
    [
        pytest.param(False, 1, pb.ENDPOINTS_FRESHNESS_CURRENT, 1, id="current"),
        pytest.param(False, 0, pb.ENDPOINTS_FRESHNESS_CURRENT, 0, id="exports-no-endpoints"),
        pytest.param(True, 1, pb.ENDPOINTS_FRESHNESS_STALE, 1, id="unknown-last-known-kept"),
    ],
)
def test_exporter_freshness_tells_none_from_unknown(
    stale: bool, endpoints: int, freshness: int, ready: int
) -> None:
    c2 = ClusterStatus(
        name=cid("c2"), reachable=not stale, synced=True, stale=stale, staleness_seconds=42.0
    )
    service = dataclasses.replace(
        SERVICES[1], endpoints={cid("c2"): SERVICES[1].endpoints[cid("c2")][:endpoints]}
    )
    msg = convert.service_to_pb(
        service, host_suffix=HOST_SUFFIX, include_endpoints=False, clusters={c2.name: c2}
    )
    [exporter] = msg.exporters
    assert (exporter.freshness, exporter.ready_endpoints) == (freshness, ready)
    assert exporter.staleness_seconds == 42.0


def test_cluster_staleness_and_gateway_health() -> None:
    down = GatewayHealth(
        state=GatewayState.DOWN, address="127.0.2.1:15443", failures=3, error="refused", since=T0
    )
    msg = convert.cluster_to_pb(ClusterStatus(name=cid("c2"), staleness_seconds=12.5, gateway=down))
    assert msg.staleness_seconds == 12.5
    assert msg.gateway.state == pb.GatewayHealth.STATE_DOWN
    assert (msg.gateway.address, msg.gateway.consecutive_failures) == ("127.0.2.1:15443", 3)
    assert msg.gateway.HasField("since")
    never = convert.cluster_to_pb(ClusterStatus(name=cid("c3")))
    assert not never.HasField("staleness_seconds")
    assert never.gateway.state == pb.GatewayHealth.STATE_UNKNOWN


@pytest.mark.parametrize(
    ("leadership", "expected"),
    [
        pytest.param(Leadership(), (False, True, ""), id="no-election"),
        pytest.param(
            Leadership(enabled=True, leader=False, identity="b", holder="a", transitions=2),
            (True, False, "a"),
            id="standby",
        ),
    ],
)
def test_status_reports_the_leader(
    leadership: Leadership, expected: tuple[bool, bool, str]
) -> None:
    msg = convert.status_to_pb(
        ready=True, clusters=(), services=(), now=T0, leadership=leadership
    ).leader_election
    assert (msg.enabled, msg.leader, msg.holder) == expected

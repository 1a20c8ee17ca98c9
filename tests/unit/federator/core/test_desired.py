"""Global services from the views of all clusters: sameness, oldest-export-wins, reports."""

from __future__ import annotations

import pytest

from federator.core.desired import compute_desired
from federator.core.model import (
    Endpoint,
    ExportVia,
    Reason,
    ServiceKey,
    ServicePort,
    Topology,
)
from tests.helpers.federator_builders import (
    HTTP,
    REVIEWS,
    acceptance_views,
    cid,
    export,
    make_config,
    pods,
    view,
)


def test_namespace_sameness_makes_one_global_service() -> None:
    desired = compute_desired(config=make_config(), views=acceptance_views())
    (service,) = desired.services
    assert service.key == REVIEWS
    assert service.host == "reviews.default.svc.clusterset.local"
    assert service.sources == ("c1", "c2")
    assert service.winner == "c1"
    assert [c.ready_count for c in service.contributions] == [2, 1]
    assert desired.conflicts == ()


def test_same_name_in_other_namespace_is_another_service() -> None:
    other = ServiceKey("shop", "reviews")
    views = {
        cid("c1"): view("c1", [export("c1")], {REVIEWS: pods("10.1.0", 1)}),
        cid("c2"): view("c2", [export("c2", key=other)], {other: pods("10.2.0", 1)}),
    }
    desired = compute_desired(config=make_config(names=("c1", "c2")), views=views)
    assert [s.key for s in desired.services] == [REVIEWS, other]
    assert [s.sources for s in desired.services] == [("c1",), ("c2",)]


@pytest.mark.parametrize(
    "via", [pytest.param(v, id=v.value) for v in (ExportVia.LABEL, ExportVia.SERVICE_EXPORT)]
)
def test_label_and_serviceexport_exports_are_equivalent(via: ExportVia) -> None:
    views = {
        cid("c1"): view("c1", [export("c1", via=via)], {REVIEWS: pods("10.1.0", 1)}),
        cid("c2"): view("c2"),
    }
    desired = compute_desired(config=make_config(names=("c1", "c2")), views=views)
    assert desired.services[0].sources == ("c1",)


def test_only_ready_endpoints_are_counted_and_sorted() -> None:
    eps = (
        Endpoint.of("10.1.0.9", {"http": 9080}),
        Endpoint.of("10.1.0.2", {"http": 9080}, ready=False),
        Endpoint.of("10.1.0.1", {"http": 9080}),
    )
    views = {cid("c1"): view("c1", [export("c1")], {REVIEWS: eps})}
    desired = compute_desired(config=make_config(names=("c1",), regions=()), views=views)
    assert [e.address for e in desired.services[0].contributions[0].endpoints] == [
        "10.1.0.1",
        "10.1.0.9",
    ]


CONFLICTS = [
    pytest.param(
        ServicePort("http", 8080),
        ("http", 9080),
        'defines port 8080/TCP named "http", but the older export in c1 defines 9080/TCP',
        id="same-name-other-number",
    ),
    pytest.param(
        ServicePort("web", 9080),
        ("http", 9080),
        'defines port 9080/TCP named "web"',
        id="same-number-other-name",
    ),
    pytest.param(
        ServicePort("http", 9080, app_protocol="kubernetes.io/h2c"),
        ("http", 9080),
        "appProtocol kubernetes.io/h2c",
        id="other-app-protocol",
    ),
]


@pytest.mark.parametrize(("newer_port", "winner", "message"), CONFLICTS)
def test_port_conflict_oldest_export_wins(
    newer_port: ServicePort, winner: tuple[str, int], message: str
) -> None:
    # c1 exported first; test_oldest_wins_regardless_of_cluster_name covers the reverse.
    views = {
        cid("c1"): view("c1", [export("c1", minutes=0)], {REVIEWS: pods("10.1.0", 1)}),
        cid("c2"): view(
            "c2", [export("c2", minutes=10, ports=(newer_port,))], {REVIEWS: pods("10.2.0", 1)}
        ),
    }
    desired = compute_desired(config=make_config(names=("c1", "c2")), views=views)
    (service,) = desired.services
    assert [(p.name, p.port) for p in service.ports] == [winner]
    (conflict,) = desired.conflicts
    assert (conflict.loser, conflict.winner, conflict.reason) == ("c2", "c1", Reason.PORT_CONFLICT)
    assert message in conflict.message
    assert conflict.condition().cluster == "c2"
    # the loser still serves the global service
    assert service.sources == ("c1", "c2")


def test_oldest_wins_regardless_of_cluster_name() -> None:
    views = {
        cid("c1"): view("c1", [export("c1", minutes=30, ports=(ServicePort("http", 8080),))]),
        cid("c2"): view("c2", [export("c2", minutes=1)]),
    }
    desired = compute_desired(config=make_config(names=("c1", "c2")), views=views)
    assert desired.services[0].winner == "c2"
    assert [p.port for p in desired.services[0].ports] == [9080]
    assert desired.conflicts[0].loser == "c1"


def test_export_time_tie_is_broken_by_cluster_name() -> None:
    views = {
        cid("c2"): view("c2", [export("c2", ports=(ServicePort("http", 1),))]),
        cid("c1"): view("c1", [export("c1", ports=(ServicePort("http", 2),))]),
    }
    desired = compute_desired(config=make_config(names=("c1", "c2")), views=views)
    assert desired.services[0].ports[0].port == 2


def test_ports_are_a_union_and_identical_ports_do_not_conflict() -> None:
    grpc = ServicePort("grpc", 9090)
    views = {
        cid("c1"): view("c1", [export("c1", ports=(HTTP,))]),
        cid("c2"): view("c2", [export("c2", minutes=1, ports=(grpc, HTTP))]),
    }
    desired = compute_desired(config=make_config(names=("c1", "c2")), views=views)
    assert [p.name for p in desired.services[0].ports] == ["http", "grpc"]
    assert desired.conflicts == ()


def test_udp_ports_are_left_out_and_reported() -> None:
    dns = ServicePort("dns", 53, protocol="UDP")
    views = {cid("c1"): view("c1", [export("c1", ports=(HTTP, dns))])}
    desired = compute_desired(config=make_config(names=("c1",), regions=()), views=views)
    assert [p.name for p in desired.services[0].ports] == ["http"]
    assert [c.reason for c in desired.conditions] == [Reason.UNSUPPORTED_PORT_PROTOCOL]


def test_udp_only_service_is_not_federated() -> None:
    dns = ServicePort("dns", 53, protocol="UDP")
    views = {cid("c1"): view("c1", [export("c1", ports=(dns,))])}
    desired = compute_desired(config=make_config(names=("c1",), regions=()), views=views)
    assert desired.services == ()


def test_topology_override_from_oldest_export_and_conflict() -> None:
    views = {
        cid("c1"): view("c1", [export("c1", topology=Topology.VPN)]),
        cid("c2"): view("c2", [export("c2", minutes=3)]),
    }
    desired = compute_desired(config=make_config(names=("c1", "c2")), views=views)
    assert desired.services[0].topology is Topology.VPN
    (conflict,) = desired.conflicts
    assert (conflict.reason, conflict.loser) == (Reason.TOPOLOGY_CONFLICT, "c2")


def test_gateway_problems_are_reported() -> None:
    views = {
        cid("c1"): view("c1", [export("c1")], gateway=None),
        cid("c2"): view("c2", [export("c2")], gateway_healthy=False),
    }
    desired = compute_desired(config=make_config(names=("c1", "c2")), views=views)
    assert [(c.cluster, c.reason) for c in desired.conditions] == [
        ("c1", Reason.GATEWAY_ADDRESS_UNKNOWN),
        ("c2", Reason.GATEWAY_UNHEALTHY),
    ]


def test_configured_gateway_address_overrides_observed() -> None:
    config = make_config(names=("c1", "c2"), addresses={"c1": "gw.c1.example.com"})
    desired = compute_desired(config=config, views=acceptance_views() | {})
    c1, c2 = desired.services[0].contributions
    assert (c1.gateway_address, c2.gateway_address) == ("gw.c1.example.com", "192.0.2.2")


def test_clusters_outside_the_config_and_unwanted_keys_are_ignored() -> None:
    views = acceptance_views()
    config = make_config(names=("c2", "c3"))
    desired = compute_desired(config=config, views=views)
    assert desired.services[0].sources == ("c2",)
    assert compute_desired(config=config, views=views, keys=[ServiceKey("x", "y")]).services == ()


def test_unhealthy_cluster_keeps_contributing_last_known_data() -> None:
    views = acceptance_views()
    views[cid("c2")] = view("c2", [export("c2")], {REVIEWS: pods("10.2.0", 1)}, healthy=False)
    service = compute_desired(config=make_config(), views=views).services[0]
    c2 = service.contribution(cid("c2"))
    assert c2 is not None and c2.ready_count == 1 and not c2.trusted


def test_desired_is_deterministic_under_input_order() -> None:
    views = acceptance_views()
    reversed_views = dict(reversed(list(views.items())))
    config = make_config()
    assert compute_desired(config=config, views=views) == compute_desired(
        config=config, views=reversed_views
    )

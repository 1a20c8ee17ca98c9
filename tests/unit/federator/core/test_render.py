"""ServiceEntry/DestinationRule rendering: the issue's gateway and vpn acceptance scenarios,
protocols, weights, localities, DNS resolution, failover and byte-stable output."""

from __future__ import annotations

import json
from typing import Any

import pytest

from federator.core.desired import compute_desired
from federator.core.model import Endpoint, Reason, ServiceKey, ServicePort, Topology
from federator.core.protocol import istio_protocol
from federator.core.render import failover_rules, render_cluster, service_label_value
from tests.helpers.federator_builders import (
    REVIEWS,
    acceptance_views,
    by_kind,
    cid,
    export,
    make_config,
    manifests_for,
    pods,
    view,
)

HOST = "reviews.default.svc.clusterset.local"


def endpoints(se: dict[str, Any]) -> list[tuple[str, str, dict[str, int], int | None]]:
    return [
        (
            e["labels"]["topology.istio.io/cluster"],
            e["address"],
            e.get("ports", {}),
            e.get("weight"),
        )
        for e in se["spec"].get("endpoints", [])
    ]


def test_gateway_acceptance_c3_gets_both_gateways_weighted() -> None:
    manifests = manifests_for(make_config(), acceptance_views(), "c3")
    se = by_kind(manifests, "ServiceEntry")
    assert se["apiVersion"] == "networking.istio.io/v1"
    assert se["metadata"]["name"] == "meshfed-reviews"
    assert se["metadata"]["namespace"] == "default"
    assert se["spec"]["hosts"] == [HOST]
    assert se["spec"]["location"] == "MESH_INTERNAL"
    assert se["spec"]["resolution"] == "STATIC"
    assert se["spec"]["ports"] == [{"number": 9080, "name": "http", "protocol": "HTTP"}]
    assert endpoints(se) == [
        ("c1", "192.0.2.1", {"http": 15443}, 2),
        ("c2", "192.0.2.2", {"http": 15443}, 1),
    ]
    assert [e["locality"] for e in se["spec"]["endpoints"]] == [
        "region-a/region-a-1",
        "region-b/region-b-1",
    ]
    assert all("network" not in e for e in se["spec"]["endpoints"])
    dr = by_kind(manifests, "DestinationRule")
    assert dr["spec"]["host"] == HOST
    assert dr["spec"]["trafficPolicy"]["tls"] == {"mode": "ISTIO_MUTUAL"}
    assert dr["spec"]["trafficPolicy"]["outlierDetection"]["consecutive5xxErrors"] == 5


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        pytest.param(
            "c1",
            [
                ("c1", "10.1.0.1", {"http": 9080}, None),
                ("c1", "10.1.0.2", {"http": 9080}, None),
                ("c2", "192.0.2.2", {"http": 15443}, 1),
            ],
            id="c1-own-pods-and-c2-gateway",
        ),
        pytest.param(
            "c2",
            [
                ("c1", "192.0.2.1", {"http": 15443}, 2),
                ("c2", "10.2.0.1", {"http": 9080}, None),
            ],
            id="c2-own-pod-and-c1-gateway",
        ),
    ],
)
def test_gateway_acceptance_exporters(target: str, expected: list[Any]) -> None:
    se = by_kind(manifests_for(make_config(), acceptance_views(), target), "ServiceEntry")
    assert endpoints(se) == expected


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        pytest.param("c3", ["10.1.0.1", "10.1.0.2", "10.2.0.1"], id="c3"),
        pytest.param("c1", ["10.1.0.1", "10.1.0.2", "10.2.0.1"], id="c1"),
        pytest.param("c2", ["10.1.0.1", "10.1.0.2", "10.2.0.1"], id="c2"),
    ],
)
def test_vpn_acceptance_remote_pod_ips(target: str, expected: list[str]) -> None:
    config = make_config(topology=Topology.VPN)
    se = by_kind(manifests_for(config, acceptance_views(), target), "ServiceEntry")
    assert [e["address"] for e in se["spec"]["endpoints"]] == expected
    assert all(e["ports"] == {"http": 9080} and "weight" not in e for e in se["spec"]["endpoints"])
    assert [e["labels"]["topology.istio.io/cluster"] for e in se["spec"]["endpoints"]] == [
        "c1",
        "c1",
        "c2",
    ]
    assert all("network" not in e for e in se["spec"]["endpoints"])
    assert se["spec"]["resolution"] == "STATIC"


def test_vpn_uses_each_clusters_own_target_ports() -> None:
    views = acceptance_views()
    views[cid("c2")] = view("c2", [export("c2")], {REVIEWS: pods("10.2.0", 1, port=8081)})
    se = by_kind(manifests_for(make_config(topology=Topology.VPN), views, "c3"), "ServiceEntry")
    assert [e["ports"] for e in se["spec"]["endpoints"]] == [{"http": 9080}] * 2 + [{"http": 8081}]


def test_hostname_gateway_makes_resolution_dns() -> None:
    config = make_config(addresses={"c2": "gw.c2.example.com"})
    se = by_kind(manifests_for(config, acceptance_views(), "c3"), "ServiceEntry")
    assert se["spec"]["resolution"] == "DNS"
    assert "gw.c2.example.com" in [e["address"] for e in se["spec"]["endpoints"]]


@pytest.mark.parametrize(
    ("case", "views_change"),
    [
        pytest.param("no ready pods", {"c2": {"endpoints": {}}}, id="zero-ready-left-out"),
        pytest.param("gateway down", {"c2": {"gateway_healthy": False}}, id="unhealthy-gateway"),
        pytest.param("no address", {"c2": {"gateway": None}}, id="unknown-gateway-address"),
    ],
)
def test_remote_gateway_left_out(case: str, views_change: dict[str, dict[str, Any]]) -> None:
    views = acceptance_views()
    kwargs: dict[str, Any] = {"endpoints": {REVIEWS: pods("10.2.0", 1)}} | views_change["c2"]
    views[cid("c2")] = view("c2", [export("c2")], **kwargs)
    se = by_kind(manifests_for(make_config(), views, "c3"), "ServiceEntry")
    assert [e[0] for e in endpoints(se)] == ["c1"], case
    # c2 is still a source: nothing is pruned on its behalf
    assert se["metadata"]["annotations"]["meshfed.io/source-clusters"] == "c1,c2"


@pytest.mark.parametrize(
    ("target", "down", "kept"),
    [
        pytest.param("c3", ("c1", "c2"), ("c1", "c2"), id="every-gateway-down-all-kept"),
        pytest.param("c3", ("c2",), (), id="one-down-withdrawn-other-left"),
        pytest.param("c1", ("c2",), (), id="own-pods-left-gateway-withdrawn"),
        pytest.param("c2", ("c1",), (), id="exporter-keeps-own-pods-only"),
    ],
)
def test_last_endpoint_of_a_target_is_never_withdrawn(
    target: str, down: tuple[str, ...], kept: tuple[str, ...]
) -> None:
    views = acceptance_views()
    for name in down:
        views[cid(name)] = view(
            name,
            [export(name)],
            {REVIEWS: pods(f"10.{name[1]}.0", 2 if name == "c1" else 1)},
            gateway_healthy=False,
        )
    config = make_config()
    desired = compute_desired(config=config, views=views)
    rendered = render_cluster(
        desired, target=config.cluster(target), namespaces=frozenset({"default"}), config=config
    )
    se = by_kind(list(rendered.manifests.values()), "ServiceEntry")
    gateways = {e[0] for e in endpoints(se) if e[2] == {"http": 15443}}
    assert gateways == set(kept) | ({"c1", "c2"} - set(down) - {target})
    assert endpoints(se)  # never left without an endpoint
    last = [c for c in rendered.conditions if c.reason is Reason.LAST_ENDPOINT_KEPT]
    assert {c.cluster for c in last} <= {target}  # about the target where it was kept
    assert sorted(c.message.split()[4] for c in last) == list(kept)


def test_no_endpoints_anywhere_still_renders_static_entry() -> None:
    views = {cid("c1"): view("c1", [export("c1")]), cid("c3"): view("c3")}
    se = by_kind(manifests_for(make_config(names=("c1", "c3")), views, "c3"), "ServiceEntry")
    assert se["spec"]["resolution"] == "STATIC"
    assert "endpoints" not in se["spec"]


def test_endpoint_zone_from_endpointslice_wins_over_cluster_zone() -> None:
    eps = (Endpoint.of("10.1.0.1", {"http": 9080}, zone="region-a-2"),)
    views = {cid("c1"): view("c1", [export("c1")], {REVIEWS: eps})}
    se = by_kind(manifests_for(make_config(names=("c1",)), views, "c1"), "ServiceEntry")
    assert se["spec"]["endpoints"][0]["locality"] == "region-a/region-a-2"


def test_labels_and_annotations() -> None:
    for manifest in manifests_for(make_config(), acceptance_views(), "c3"):
        meta = manifest["metadata"]
        assert meta["labels"] == {
            "app.kubernetes.io/managed-by": "meshfed",
            "meshfed.io/service": "default.reviews",
        }
        assert meta["annotations"] == {
            "meshfed.io/service": "default/reviews",
            "meshfed.io/source-clusters": "c1,c2",
        }


def test_long_service_label_is_shortened_but_valid() -> None:
    key = ServiceKey("n" * 63, "s" * 63)
    value = service_label_value(key)
    assert len(value) <= 63 and value[-1].isalnum()
    assert value != service_label_value(ServiceKey("n" * 63, "s" * 62 + "t"))


@pytest.mark.parametrize(
    ("port", "protocol"),
    [
        pytest.param(ServicePort("http", 80), "HTTP", id="http"),
        pytest.param(ServicePort("http-web", 80), "HTTP", id="http-suffix"),
        pytest.param(ServicePort("HTTP2-x", 80), "HTTP2", id="case-insensitive"),
        pytest.param(ServicePort("https", 443), "HTTPS", id="https"),
        pytest.param(ServicePort("grpc", 90), "GRPC", id="grpc"),
        pytest.param(ServicePort("grpc-web", 90), "GRPC-Web", id="grpc-web"),
        pytest.param(ServicePort("grpc-webui", 90), "GRPC-Web", id="grpc-web-prefix"),
        pytest.param(ServicePort("grpc-api", 90), "GRPC", id="grpc-suffix"),
        pytest.param(ServicePort("tls-db", 5432), "TLS", id="tls"),
        pytest.param(ServicePort("tcp", 5432), "TCP", id="tcp"),
        pytest.param(ServicePort("mongo", 27017), "Mongo", id="mongo"),
        pytest.param(ServicePort("mysql", 3306), "MySQL", id="mysql"),
        pytest.param(ServicePort("redis", 6379), "Redis", id="redis"),
        pytest.param(ServicePort("web", 80), "TCP", id="unknown-name-tcp"),
        pytest.param(ServicePort("", 80), "TCP", id="unnamed-tcp"),
        pytest.param(ServicePort("httpx", 80), "TCP", id="no-dash-no-match"),
        pytest.param(ServicePort("web", 80, app_protocol="http"), "HTTP", id="app-protocol"),
        pytest.param(
            ServicePort("tcp", 80, app_protocol="kubernetes.io/h2c"), "HTTP2", id="app-h2c-wins"
        ),
        pytest.param(ServicePort("x", 80, app_protocol="kubernetes.io/ws"), "HTTP", id="app-ws"),
        pytest.param(ServicePort("x", 80, app_protocol="kubernetes.io/wss"), "HTTPS", id="app-wss"),
        pytest.param(
            ServicePort("http-api", 80, app_protocol="example.com/custom"),
            "TCP",
            id="unknown-app-protocol-replaces-name",
        ),
    ],
)
def test_protocol_selection(port: ServicePort, protocol: str) -> None:
    assert istio_protocol(port) == protocol


def test_unnamed_port_gets_a_name() -> None:
    port = ServicePort("", 8080)
    views = {
        cid("c1"): view("c1", [export("c1", ports=(port,))], {REVIEWS: pods("10.1.0", 1, name="")})
    }
    se = by_kind(manifests_for(make_config(names=("c1",)), views, "c1"), "ServiceEntry")
    assert se["spec"]["ports"] == [{"number": 8080, "name": "port-8080", "protocol": "TCP"}]
    assert se["spec"]["endpoints"][0]["ports"] == {"port-8080": 9080}


@pytest.mark.parametrize(
    ("regions", "expected"),
    [
        pytest.param((), [], id="none"),
        pytest.param(("a",), [], id="single-region"),
        pytest.param(("a", "b"), [("a", "b"), ("b", "a")], id="two"),
        pytest.param(("a", "b", "c"), [("a", "b"), ("b", "a"), ("c", "a")], id="three"),
    ],
)
def test_failover_from_region_order(regions: tuple[str, ...], expected: list[Any]) -> None:
    assert [(r["from"], r["to"]) for r in failover_rules(regions)] == expected


def test_destination_rule_failover_and_outlier_detection() -> None:
    config = make_config(regions=("region-b", "region-a"))
    dr = by_kind(manifests_for(config, acceptance_views(), "c1"), "DestinationRule")
    lb = dr["spec"]["trafficPolicy"]["loadBalancer"]["localityLbSetting"]
    assert lb == {
        "enabled": True,
        "failover": [
            {"from": "region-b", "to": "region-a"},
            {"from": "region-a", "to": "region-b"},
        ],
    }
    assert dr["spec"]["trafficPolicy"]["outlierDetection"] == {
        "consecutive5xxErrors": 5,
        "interval": "10s",
        "baseEjectionTime": "30s",
        "maxEjectionPercent": 100,
    }


def test_missing_namespace_is_skipped_with_condition() -> None:
    views = acceptance_views()
    views[cid("c3")] = view("c3", namespaces=("istio-system",))
    config = make_config()
    desired = compute_desired(config=config, views=views)
    rendered = render_cluster(
        desired, target=config.cluster("c3"), namespaces=views[cid("c3")].namespaces, config=config
    )
    assert rendered.manifests == {}
    assert [(c.cluster, c.reason) for c in rendered.conditions] == [
        ("c3", Reason.NAMESPACE_MISSING)
    ]


def test_rendering_is_byte_identical_across_runs_and_input_orders() -> None:
    config = make_config()
    views = acceptance_views()
    shuffled = {
        k: view(
            k,
            [export(k, minutes=5 if k == "c2" else 0)] if k != "c3" else [],
            {REVIEWS: tuple(reversed(v.endpoints.get(REVIEWS, ())))} if k != "c3" else {},
        )
        for k, v in reversed(list(views.items()))
    }
    first = json.dumps(manifests_for(config, views, "c1"))
    assert first == json.dumps(manifests_for(config, views, "c1"))
    assert first == json.dumps(manifests_for(config, shuffled, "c1"))


@pytest.mark.parametrize(
    "topology",
    [pytest.param(Topology.GATEWAY, id="gateway"), pytest.param(Topology.VPN, id="vpn")],
)
@pytest.mark.parametrize("target", [pytest.param(c, id=c) for c in ("c1", "c2", "c3")])
def test_every_endpoint_is_labelled_as_an_istio_mtls_workload(
    topology: Topology, target: str
) -> None:
    """AUTO_PASSTHROUGH gateways forward only to endpoints labelled tlsMode=istio; the
    DestinationRule makes every endpoint ISTIO_MUTUAL, so every endpoint carries it."""
    config = make_config(topology=topology)
    se = by_kind(manifests_for(config, acceptance_views(), target), "ServiceEntry")
    assert se["spec"]["endpoints"]
    assert all(e["labels"]["security.istio.io/tlsMode"] == "istio" for e in se["spec"]["endpoints"])

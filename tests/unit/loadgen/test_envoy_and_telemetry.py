"""Envoy RDS/EDS messages as istiod builds them -> the outcome model; the cumulative metrics
and the remote_write encoding (decoded back with the collectors' own decoder)."""

from __future__ import annotations

from typing import Any

import pytest
from envoy.config.core.v3.base_pb2 import Locality  # type: ignore[import-untyped]
from envoy.config.endpoint.v3.endpoint_pb2 import ClusterLoadAssignment  # type: ignore[import-untyped]
from envoy.config.route.v3.route_pb2 import RouteConfiguration  # type: ignore[import-untyped]
from envoy.extensions.filters.http.fault.v3.fault_pb2 import HTTPFault  # type: ignore[import-untyped]

from collectors.receivers.prometheus.protocol.remote_write import decode
from meshfed.loadgen.envoy import endpoints_of, virtual_hosts
from meshfed.loadgen.model import Fault, MatchKind, Target
from meshfed.loadgen.telemetry import (
    DURATION,
    REQUESTS,
    HopRecord,
    MetricsBook,
    encode_write_request,
    snappy_block,
)

pytestmark = pytest.mark.unit
HOST = "reviews.default.svc.clusterset.local"


def route_config(fault: HTTPFault | None = None) -> Any:
    rc = RouteConfiguration(name="9080")
    vh = rc.virtual_hosts.add(name=f"{HOST}:9080", domains=[HOST, f"{HOST}:9080"])
    r = vh.routes.add(name="jason")
    r.match.prefix = "/"
    h = r.match.headers.add(name="end-user")
    h.string_match.exact = "jason"
    for name, weight in (("v1", 50), ("v3", 50)):
        c = r.route.weighted_clusters.clusters.add(name=f"outbound|9080|{name}|{HOST}")
        c.weight.value = weight
    if fault is not None:
        r.typed_per_filter_config["envoy.filters.http.fault"].Pack(fault)
    d = vh.routes.add(name="default")
    d.match.prefix = "/"
    d.route.cluster = f"outbound|9080||{HOST}"
    return rc


def test_routes_header_match_and_weighted_clusters() -> None:
    (vh,) = virtual_hosts(route_config())
    jason, default = vh.routes
    assert vh.domains == (HOST, f"{HOST}:9080")
    assert [(h.name, h.kind, h.value) for h in jason.headers] == [
        ("end-user", MatchKind.EXACT, "jason")
    ]
    assert jason.targets == (
        Target(f"outbound|9080|v1|{HOST}", 50),
        Target(f"outbound|9080|v3|{HOST}", 50),
    )
    assert default.targets == (Target(f"outbound|9080||{HOST}", 1),)
    assert jason.fault is None


@pytest.mark.parametrize(
    ("numerator", "denominator", "percent"),
    [
        pytest.param(500_000, 2, 50.0, id="istio-million-denominator"),
        pytest.param(25, 0, 25.0, id="hundred-denominator"),
        pytest.param(1_000, 1, 10.0, id="ten-thousand-denominator"),
    ],
)
def test_fault_percentages_and_values(numerator: int, denominator: int, percent: float) -> None:
    fault = HTTPFault()
    fault.abort.http_status = 503
    fault.abort.percentage.numerator = numerator
    fault.abort.percentage.denominator = denominator
    fault.delay.fixed_delay.seconds = 7
    fault.delay.percentage.numerator = numerator
    fault.delay.percentage.denominator = denominator
    (vh,) = virtual_hosts(route_config(fault))
    assert vh.routes[0].fault == Fault(7000.0, percent, 503, percent)


def test_eds_endpoints_cluster_by_gateway_address_then_locality() -> None:
    cla = ClusterLoadAssignment(cluster_name=f"outbound|9080||{HOST}")
    for priority, (region, zone, address, weight) in enumerate(
        [("region-a", "region-a-1", "127.0.1.1", 2), ("region-b", "region-b-1", "10.3.0.5", 1)]
    ):
        group = cla.endpoints.add(locality=Locality(region=region, zone=zone), priority=priority)
        lb = group.lb_endpoints.add()
        lb.endpoint.address.socket_address.address = address
        lb.endpoint.address.socket_address.port_value = 15443
        lb.load_balancing_weight.value = weight
    eps = endpoints_of(
        cla, by_address={"127.0.1.1": "c1"}, by_locality={"region-b/region-b-1": "c3"}
    )
    assert [(e.address, e.cluster, e.weight, e.priority) for e in eps] == [
        ("127.0.1.1", "c1", 2, 0),
        ("10.3.0.5", "c3", 1, 1),
    ]


def hop(code: int, ms: float) -> HopRecord:
    return HopRecord(
        "loadgen", "default", "c3", HOST, "reviews", "default", "reviews", "unknown", "c1",
        code, "-" if code == 200 else "FI", ms,
    )  # fmt: skip


def test_metrics_are_cumulative_with_istio_buckets_and_a_zero_start() -> None:
    book = MetricsBook()
    book.record(hop(200, 3.0))
    book.record(hop(200, 7000.0))
    first = {
        (s[0]["__name__"], s[0].get("le")): s[1]
        for s in book.series(2000, 1000)
        if s[0]["reporter"] == "source"
    }
    assert first[(REQUESTS, None)] == [(1000, 0.0), (2000, 2)]
    assert first[(f"{DURATION}_bucket", "5")] == [(1000, 0.0), (2000, 1)]
    assert first[(f"{DURATION}_bucket", "5000")] == [(1000, 0.0), (2000, 1)]
    assert first[(f"{DURATION}_bucket", "10000")] == [(1000, 0.0), (2000, 2)]
    assert first[(f"{DURATION}_bucket", "+Inf")] == [(1000, 0.0), (2000, 2)]
    book.record(hop(200, 1.0))
    second = {
        (s[0]["__name__"], s[0].get("le")): s[1]
        for s in book.series(3000, 2000)
        if s[0]["reporter"] == "source"
    }
    assert second[(REQUESTS, None)] == [(3000, 3)]  # no new zero once announced
    assert second[(f"{DURATION}_sum", None)] == [(3000, 7004.0)]


def test_remote_write_body_decodes_with_the_collectors_parser() -> None:
    book = MetricsBook()
    book.record(hop(500, 12.0))
    series = book.series(5000)
    body = snappy_block(encode_write_request(series))
    samples = decode(body, max_decompressed_bytes=1 << 20).samples
    names = sorted({s.name for s in samples})
    assert names == [f"{DURATION}_bucket", f"{DURATION}_count", f"{DURATION}_sum", REQUESTS]
    requests = next(s for s in samples if s.name == REQUESTS and s.labels["reporter"] == "source")
    assert (requests.timestamp_ms, requests.value) == (5000, 1.0)
    labels = requests.labels
    assert labels["response_code"] == "500"
    assert labels["response_flags"] == "FI"
    assert labels["reporter"] == "source"
    assert labels["destination_cluster"] == "c1"


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        pytest.param(
            HopRecord(
                "productpage", "default", "c1", HOST, "reviews", "default", "reviews-v2", "v2",
                "c2", 200, "-", 12.0,
            ),
            {("source", "c1"): (1, 12.0), ("destination", "c2"): (1, 12.0)},
            id="served-both-reporters-each-in-its-cluster",
        ),
        pytest.param(
            HopRecord(
                "reviews", "default", "c1", HOST, "ratings", "default", "unknown", "unknown",
                "unknown", 500, "FI", 0.4,
            ),
            {("source", "c1"): (1, 0.4)},
            id="injected-abort-never-reaches-the-server",
        ),
        pytest.param(
            HopRecord(
                "reviews", "default", "c1", HOST, "ratings", "default", "ratings", "unknown",
                "c3", 200, "DI", 7010.0, injected_delay_ms=7000.0,
            ),
            {("source", "c1"): (1, 7010.0), ("destination", "c3"): (1, 10.0)},
            id="injected-delay-is-spent-before-the-server",
        ),
    ],
)  # fmt: skip
def test_istio_records_a_hop_at_the_client_and_at_the_server(
    record: HopRecord, expected: dict[tuple[str, str], tuple[int, float]]
) -> None:
    book = MetricsBook()
    book.record(record)
    seen = {}
    for labels, samples in book.series(1000):
        key = (labels["reporter"], labels.get("cluster", ""))
        if labels["__name__"] == REQUESTS:
            seen[key] = (int(samples[-1][1]), seen.get(key, (0, 0.0))[1])
        elif labels["__name__"] == f"{DURATION}_sum":
            seen[key] = (seen.get(key, (0, 0.0))[0], samples[-1][1])
    assert seen == expected

"""The load generator's pure outcome model: route and header matching, weights, faults,
endpoint picking. Frequencies are checked against binomial bounds with a fixed seed."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from meshfed.loadgen.model import (
    EndpointPick,
    Fault,
    HeaderMatch,
    MatchKind,
    Outcome,
    Request,
    Route,
    Target,
    VirtualHost,
    decide,
    find_virtual_host,
    pick_endpoint,
)

pytestmark = pytest.mark.unit

HOST = "reviews.default.svc.clusterset.local"
PLAIN = f"outbound|9080||{HOST}"
V1, V3 = f"outbound|9080|v1|{HOST}", f"outbound|9080|v3|{HOST}"
ENDPOINTS = {
    PLAIN: (
        EndpointPick("10.1.0.1", "c1", "region-a/region-a-1"),
        EndpointPick("127.0.2.1", "c2", "region-a/region-a-2", weight=3),
    ),
    V1: (EndpointPick("10.1.0.1", "c1", "region-a/region-a-1"),),
    V3: (EndpointPick("127.0.2.1", "c2", "region-a/region-a-2"),),
}
JASON = HeaderMatch("end-user", MatchKind.EXACT, "jason")


def vh(*routes: Route) -> tuple[VirtualHost, ...]:
    return (VirtualHost((HOST, f"{HOST}:9080"), routes),)


def default_route(*targets: Target, fault: Fault | None = None) -> Route:
    return Route("default", (), "/", targets or (Target(PLAIN),), fault)


def run(
    hosts: tuple[VirtualHost, ...], n: int, headers: dict[str, str] | None = None, seed: int = 7
) -> list[Outcome]:
    rng = random.Random(seed)
    return [decide(Request(HOST, 9080, "/", headers), hosts, ENDPOINTS, rng) for _ in range(n)]


def within_binomial(hits: int, n: int, p: float, z: float = 4.0) -> bool:
    sd = math.sqrt(n * p * (1 - p))
    return abs(hits - n * p) <= z * sd + 1


@pytest.mark.parametrize(
    ("match", "headers", "expected"),
    [
        pytest.param(JASON, {"end-user": "jason"}, True, id="exact-hit"),
        pytest.param(JASON, {"End-User": "jason"}, True, id="header-names-case-insensitive"),
        pytest.param(JASON, {"end-user": "Jason"}, False, id="exact-values-case-sensitive"),
        pytest.param(JASON, {}, False, id="exact-missing-header"),
        pytest.param(
            HeaderMatch("end-user", MatchKind.PREFIX, "ja"), {"end-user": "jane"}, True, id="prefix"
        ),
        pytest.param(
            HeaderMatch("end-user", MatchKind.REGEX, "j.*n"),
            {"end-user": "jason"},
            True,
            id="regex",
        ),
        pytest.param(
            HeaderMatch("end-user", MatchKind.REGEX, "j"),
            {"end-user": "jason"},
            False,
            id="regex-is-a-full-match",
        ),
        pytest.param(HeaderMatch("x", MatchKind.PRESENT), {"x": ""}, True, id="present"),
        pytest.param(
            HeaderMatch("x", MatchKind.PRESENT, invert=True), {}, True, id="inverted-present"
        ),
    ],
)
def test_header_match(match: HeaderMatch, headers: dict[str, str], expected: bool) -> None:
    assert match.matches({k.lower(): v for k, v in headers.items()}) is expected


def test_no_virtual_host_is_no_route() -> None:
    (out,) = run((VirtualHost(("other.svc",), (default_route(),)),), 1)
    assert (out.status, out.flags, out.destination_cluster) == (404, "NR", "unknown")


@pytest.mark.parametrize(
    ("domains", "host", "found"),
    [
        pytest.param((HOST,), HOST, True, id="exact"),
        pytest.param((f"{HOST}:9080",), HOST, True, id="host-with-port"),
        pytest.param(("*.svc.clusterset.local",), HOST, True, id="suffix-wildcard"),
        pytest.param(("ratings.default.svc.clusterset.local",), HOST, False, id="other-host"),
    ],
)
def test_virtual_host_domains(domains: tuple[str, ...], host: str, found: bool) -> None:
    hosts = (VirtualHost(domains, ()),)
    assert (find_virtual_host(hosts, host, 9080) is not None) is found


def test_exact_domain_wins_over_an_earlier_wildcard() -> None:
    wildcard = VirtualHost(("*",), ())
    exact = VirtualHost((HOST,), ())
    assert find_virtual_host((wildcard, exact), HOST, 9080) is exact


def test_first_matching_route_wins_header_route_before_default() -> None:
    hosts = vh(Route("jason", (JASON,), "/", (Target(V3),)), default_route(Target(V1)))
    assert {o.subset for o in run(hosts, 50, {"end-user": "jason"})} == {"v3"}
    assert {o.subset for o in run(hosts, 50)} == {"v1"}


def test_endpoint_split_follows_eds_weights() -> None:
    outs = run(vh(default_route()), 4000)
    c2 = sum(o.destination_cluster == "c2" for o in outs)
    assert within_binomial(c2, 4000, 0.75)
    assert all(o.status == 200 and o.flags == "-" for o in outs)


@pytest.mark.parametrize(
    ("w1", "w3"),
    [
        pytest.param(50, 50, id="canary-50-50"),
        pytest.param(90, 10, id="canary-90-10"),
        pytest.param(0, 100, id="all-to-v3"),
    ],
)
def test_weighted_subsets(w1: int, w3: int) -> None:
    outs = run(vh(default_route(Target(V1, w1), Target(V3, w3))), 4000)
    counts = Counter(o.subset for o in outs)
    assert within_binomial(counts["v3"], 4000, w3 / 100)
    assert all(o.destination_cluster == ("c2" if o.subset == "v3" else "c1") for o in outs)


@pytest.mark.parametrize(
    ("percent", "status"),
    [
        pytest.param(50.0, 500, id="abort-50-percent-500"),
        pytest.param(100.0, 503, id="abort-all-503"),
        pytest.param(0.0, 500, id="abort-0-percent-never"),
    ],
)
def test_abort_fault(percent: float, status: int) -> None:
    fault = Fault(abort_status=status, abort_percent=percent)
    outs = run(vh(default_route(fault=fault)), 4000)
    aborted = [o for o in outs if o.status == status]
    assert within_binomial(len(aborted), 4000, percent / 100)
    assert all(o.flags == "FI" and o.destination_cluster == "unknown" for o in aborted)
    assert all(o.status == 200 for o in outs if o not in aborted)


def test_delay_fault_adds_its_delay_to_the_share_it_hits() -> None:
    outs = run(vh(default_route(fault=Fault(delay_ms=7000, delay_percent=25))), 4000)
    delayed = [o for o in outs if o.injected_delay_ms == 7000]
    assert within_binomial(len(delayed), 4000, 0.25)
    assert all(o.flags == "DI" and o.status == 200 for o in delayed)


def test_fault_only_for_jason_route() -> None:
    fault = Fault(abort_status=500, abort_percent=100)
    hosts = vh(Route("jason", (JASON,), "/", (Target(PLAIN),), fault), default_route())
    assert {o.status for o in run(hosts, 100, {"end-user": "jason"})} == {500}
    assert {o.status for o in run(hosts, 100, {"end-user": "ann"})} == {200}


def test_fault_with_its_own_headers_applies_only_when_they_match() -> None:
    fault = Fault(abort_status=500, abort_percent=100, headers=(JASON,))
    hosts = vh(default_route(fault=fault))
    assert {o.status for o in run(hosts, 20, {"end-user": "jason"})} == {500}
    assert {o.status for o in run(hosts, 20)} == {200}


def test_subset_without_endpoints_is_503_no_healthy_upstream() -> None:
    hosts = vh(default_route(Target(f"outbound|9080|v9|{HOST}")))
    (out,) = run(hosts, 1)
    assert (out.status, out.flags, out.subset) == (503, "UH", "v9")


def test_direct_response_route() -> None:
    (out,) = run(vh(Route("blocked", (), "/", (), None, direct_status=403)), 1)
    assert out.status == 403


@pytest.mark.parametrize(
    ("endpoints", "expected"),
    [
        pytest.param(
            (EndpointPick("a", "c1", "", priority=1), EndpointPick("b", "c2", "", priority=0)),
            {"c2"},
            id="best-priority-only",
        ),
        pytest.param(
            (EndpointPick("a", "c1", "", healthy=False), EndpointPick("b", "c2", "", priority=1)),
            {"c2"},
            id="failover-to-next-priority-when-unhealthy",
        ),
        pytest.param((EndpointPick("a", "c1", "", healthy=False),), set(), id="none-healthy"),
    ],
)
def test_pick_endpoint(endpoints: tuple[EndpointPick, ...], expected: set[str]) -> None:
    rng = random.Random(1)
    picks = {pick_endpoint(endpoints, rng) for _ in range(50)}
    assert {p.cluster for p in picks if p is not None} == expected


def test_same_seed_same_outcomes() -> None:
    hosts = vh(default_route(Target(V1, 50), Target(V3, 50), fault=Fault(0, 0, 500, 30)))
    assert run(hosts, 200, seed=3) == run(hosts, 200, seed=3)
    assert run(hosts, 200, seed=3) != run(hosts, 200, seed=4)

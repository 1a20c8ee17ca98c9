"""Blast radius and refusals: outages, users' VirtualServices, other drills, start conditions."""

from __future__ import annotations

from typing import Any

import pytest

from federator.core.drills.plan import (
    EndpointCount,
    RefusalReason,
    foreign_virtual_services,
    host_matches,
    plan_drill,
    start_refusals,
)
from federator.core.model import ClusterId
from tests.helpers.federator_builders import REVIEWS
from tests.unit.federator.core.drills.builders import (
    BY_REGION,
    HOST_SUFFIX,
    RATINGS,
    RATINGS_HOST,
    REVIEWS_HOST,
    desired,
    drill,
)

C1, C2, C3 = ClusterId("c1"), ClusterId("c2"), ClusterId("c3")
ONLY_REVIEWS = {"services": [{"namespace": "default", "name": "reviews"}]}


def _vs(name: str, hosts: list[str], *, drill_name: str | None = None) -> dict[str, Any]:
    labels = {"meshfed.io/drill": drill_name} if drill_name else {}
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": "default", "labels": labels},
        "spec": {"hosts": hosts},
    }


def test_drain_region_a_counts_before_and_during() -> None:
    spec = drill({"drain": {"regions": ["region-a"]}}, allowOutage=True)
    plan = plan_drill(spec, desired(), BY_REGION, host_suffix=HOST_SUFFIX)
    assert plan.targets == (C1, C2, C3)
    counts = plan.steps[0].counts
    assert EndpointCount(REVIEWS, C3, 3, 1) in counts
    assert EndpointCount(REVIEWS, C1, 3, 3) in counts  # c1 keeps its own pods
    assert EndpointCount(REVIEWS, C2, 3, 1) in counts
    assert EndpointCount(RATINGS, C3, 1, 0) in counts
    assert plan.ok, "allowOutage: true"


def test_drain_leaving_no_endpoint_is_refused_naming_step_service_cluster() -> None:
    spec = drill({"drain": {"regions": ["region-a"]}})
    plan = plan_drill(spec, desired(), BY_REGION, host_suffix=HOST_SUFFIX)
    assert not plan.ok
    assert [r.reason for r in plan.refusals] == [RefusalReason.OUTAGE] * 2
    assert [r.message for r in plan.refusals] == [
        f'step "step-one" (spec.steps[0], drain) leaves default/ratings with no reachable '
        f"endpoint in cluster {c} (before: 1); set spec.allowOutage: true to run it anyway"
        for c in ("c2", "c3")
    ]


def test_scope_limits_the_targets() -> None:
    spec = drill({"drain": {"regions": ["region-a"]}}, scope={"regions": ["region-b"]})
    plan = plan_drill(spec, desired(), BY_REGION, host_suffix=HOST_SUFFIX)
    assert plan.targets == (C2,)
    assert [r.message.split(" in cluster ")[1][:2] for r in plan.refusals] == ["c2"]


@pytest.mark.parametrize(
    ("destinations", "during_c3", "refused"),
    [
        pytest.param([{"cluster": "c1", "weight": 50}, {"cluster": "c2", "weight": 50}], 1,
                     False, id="both-clusters-have-pods"),
        pytest.param([{"cluster": "c3", "weight": 10}, {"cluster": "c1", "weight": 90}], 0,
                     True, id="weight-to-empty-cluster"),
        pytest.param([{"cluster": "c3", "weight": 0}, {"cluster": "c1", "weight": 100}], 2,
                     False, id="zero-weight-to-empty-cluster"),
        pytest.param([{"version": "v1", "weight": 50}, {"version": "v3", "weight": 50}], None,
                     False, id="versions-unknown"),
    ],
)  # fmt: skip
def test_shift_counts(destinations: list[Any], during_c3: int | None, refused: bool) -> None:
    spec = drill({"shift": {"destinations": destinations}, **ONLY_REVIEWS})
    plan = plan_drill(spec, desired(), BY_REGION, host_suffix=HOST_SUFFIX)
    assert EndpointCount(REVIEWS, C3, 3, during_c3) in plan.steps[0].counts
    assert (not plan.ok) is refused
    versions = during_c3 is None
    assert bool(plan.warnings) is versions
    assert ("WARNING: default/reviews: subsets version-v1, version-v3" in plan.render_text()) is (
        versions
    )


def test_route_to_an_empty_cluster_is_refused() -> None:
    spec = drill({"route": {"headers": {"end-user": {"exact": "jason"}}, "cluster": "c3"},
                  **ONLY_REVIEWS})  # fmt: skip
    plan = plan_drill(spec, desired(), BY_REGION, host_suffix=HOST_SUFFIX)
    assert {r.reason for r in plan.refusals} == {RefusalReason.OUTAGE}
    assert len(plan.refusals) == 3


def test_faults_keep_the_endpoints_and_list_the_objects() -> None:
    spec = drill({"abort": {"percentage": 100, "httpStatus": 500}})
    plan = plan_drill(spec, desired(), BY_REGION, host_suffix=HOST_SUFFIX)
    assert plan.ok
    assert all(c.before == c.during for c in plan.steps[0].counts)
    assert len(plan.steps[0].objects) == 6  # 2 services x 3 clusters
    text = plan.render_text()
    assert "cluster c3:" in text
    assert "  step 0 step-one (abort): VirtualService default/meshfed-drill-drill-1-" in text
    assert "    default/reviews: endpoints 3 -> 3" in text


def test_users_virtual_service_for_the_host_is_refused_by_name() -> None:
    spec = drill({"abort": {"percentage": 100, "httpStatus": 500}})
    existing = {
        C2: [
            _vs("reviews-route", [REVIEWS_HOST]),
            _vs("unrelated", ["details.default.svc.cluster.local"]),
            _vs("ours", [RATINGS_HOST], drill_name="drill-1"),
        ],
        C3: [_vs("catch-all", ["*.svc.clusterset.local"]),
             _vs("theirs", [RATINGS_HOST], drill_name="other")],
    }  # fmt: skip
    plan = plan_drill(
        spec, desired(), BY_REGION, host_suffix=HOST_SUFFIX, virtual_services=existing
    )
    assert [(r.reason, r.message.split(" is ")[0].split(" belongs")[0]) for r in plan.refusals] == [
        (RefusalReason.USER_VIRTUAL_SERVICE, "VirtualService default/reviews-route in cluster c2"),
        (RefusalReason.OTHER_DRILL, "VirtualService default/theirs in cluster c3"),
        (RefusalReason.USER_VIRTUAL_SERVICE, "VirtualService default/catch-all in cluster c3"),
    ]
    assert "a drill never overwrites a user's VirtualService" in plan.refusals[0].message


def test_a_drain_writes_no_virtual_service_so_users_ones_do_not_matter() -> None:
    spec = drill({"drain": {"clusters": ["c2"]}})
    existing = {C3: [_vs("reviews-route", [REVIEWS_HOST])]}
    plan = plan_drill(
        spec, desired(), BY_REGION, host_suffix=HOST_SUFFIX, virtual_services=existing
    )
    assert plan.ok


@pytest.mark.parametrize(
    ("pattern", "host", "matches"),
    [
        pytest.param(REVIEWS_HOST, REVIEWS_HOST, True, id="exact"),
        pytest.param("*", REVIEWS_HOST, True, id="star"),
        pytest.param("*.clusterset.local", REVIEWS_HOST, True, id="wildcard"),
        pytest.param("*.cluster.local", REVIEWS_HOST, False, id="other-suffix"),
        pytest.param("reviews", REVIEWS_HOST, False, id="short-name"),
    ],
)
def test_host_matches(pattern: str, host: str, matches: bool) -> None:
    assert host_matches(pattern, host) is matches


def test_foreign_virtual_services_ignores_other_kinds() -> None:
    dr = {"kind": "DestinationRule", "metadata": {"name": "x"}, "spec": {"hosts": ["*"]}}
    assert foreign_virtual_services("d", [REVIEWS_HOST], C1, [dr]) == ()


def test_start_refusals() -> None:
    spec = drill(
        {"abort": {"percentage": 1, "httpStatus": 503}},
        scope={"clusters": ["c1", "c2"]},
        preconditions={"notWhen": [{"name": "busy", "expr": "up == 0"},
                                   {"name": "quiet", "expr": "up == 2"}]},
    )  # fmt: skip
    refusals = start_refusals(
        spec,
        frozen=True,
        stale=[C2, C3],
        holding={"busy": True, "quiet": False},
        clusters_by_region=BY_REGION,
    )
    assert [r.reason for r in refusals] == [
        RefusalReason.FROZEN,
        RefusalReason.STALE_CLUSTER,
        RefusalReason.PRECONDITION,
    ]
    assert "cluster c2 is in scope" in refusals[1].message
    assert refusals[2].message == "spec.preconditions.notWhen[0] (busy) holds: up == 0"
    assert (
        start_refusals(spec, frozen=False, stale=[C3], holding={}, clusters_by_region=BY_REGION)
        == ()
    )

"""Drain as a view of the desired state: withdrawn from others, kept by the target itself."""

from __future__ import annotations

import pytest

from federator.core.drills.drain import (
    drained_clusters,
    drained_desired,
    drained_view,
    reachable_endpoints,
    reachable_in,
)
from federator.core.model import ClusterId
from federator.core.render import render_cluster, service_entry
from tests.helpers.federator_builders import REVIEWS, make_config
from tests.unit.federator.core.drills.builders import BY_REGION, RATINGS, desired, drill

C1, C2, C3 = ClusterId("c1"), ClusterId("c2"), ClusterId("c3")


def _sources(target: ClusterId, drained: frozenset[ClusterId]) -> list[str]:
    service = desired().service(REVIEWS)
    assert service is not None
    se = service_entry(drained_view(service, target, drained), target)
    return [e["labels"]["topology.istio.io/cluster"] for e in se["spec"].get("endpoints", [])]


@pytest.mark.parametrize(
    ("target", "drained", "sources"),
    [
        pytest.param(C3, frozenset(), ["c1", "c2"], id="nothing-drained"),
        pytest.param(C3, frozenset({C1}), ["c2"], id="c1-withdrawn-from-c3"),
        pytest.param(C3, frozenset({C1, C2}), [], id="all-withdrawn-from-c3"),
        pytest.param(C1, frozenset({C1}), ["c1", "c1", "c2"], id="target-keeps-own-pods"),
        pytest.param(C2, frozenset({C1}), ["c2"], id="c2-loses-c1"),
    ],
)
def test_drained_view_in_the_rendered_service_entry(
    target: ClusterId, drained: frozenset[ClusterId], sources: list[str]
) -> None:
    assert _sources(target, drained) == sources


def test_nothing_withdrawn_returns_the_same_object() -> None:
    service = desired().service(REVIEWS)
    assert service is not None
    assert drained_view(service, C3, frozenset({C3})) is service
    assert drained_view(service, C1, frozenset()) is service


def test_drained_clusters_resolves_regions_for_every_service() -> None:
    spec = drill({"drain": {"regions": ["region-a"], "clusters": ["c2"]}})
    assert drained_clusters(spec, 0, BY_REGION) == {
        REVIEWS: frozenset({C1, C2}),
        RATINGS: frozenset({C1, C2}),
    }
    other = drill({"abort": {"percentage": 1, "httpStatus": 503}})
    assert drained_clusters(other, 0, BY_REGION) == {}


def test_reachable_endpoints_count_pods_behind_reachable_gateways() -> None:
    service = desired().service(REVIEWS)
    assert service is not None
    assert reachable_endpoints(service, C3) == 3
    assert reachable_endpoints(service, C1) == 3
    assert reachable_in(service, C3, C2) == 1
    assert reachable_in(service, C3, C3) == 0
    assert reachable_endpoints(drained_view(service, C3, frozenset({C1})), C3) == 1


def test_drained_desired_feeds_render_cluster() -> None:
    spec = drill({"drain": {"regions": ["region-a"]}})
    state = desired()
    config = make_config()
    drained = drained_desired(state, C3, drained_clusters(spec, 0, BY_REGION))
    rendered = render_cluster(
        drained, target=config.cluster("c3"), namespaces=frozenset({"default"}), config=config
    )
    entries = {
        m["metadata"]["name"]: [e["labels"]["topology.istio.io/cluster"]
                                for e in m["spec"].get("endpoints", [])]
        for m in rendered.manifests.values()
        if m["kind"] == "ServiceEntry"
    }  # fmt: skip
    assert entries == {"meshfed-reviews": ["c2"], "meshfed-ratings": []}
    assert drained_desired(state, C3, {}) is state

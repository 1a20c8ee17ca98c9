"""Drill rendering: golden VirtualServices for each step kind, names, labels, the DR hook."""

from __future__ import annotations

from typing import Any

import pytest

from federator.core.drills.render import (
    DRILL_FIELD_MANAGER,
    render_step,
    virtual_service_name,
    with_drill_subsets,
)
from federator.core.model import ClusterId, ObjectRef
from federator.core.render import destination_rule
from tests.helpers.federator_builders import REVIEWS, make_config
from tests.unit.federator.core.drills.builders import (
    RATINGS,
    RATINGS_HOST,
    REVIEWS_HOST,
    desired,
    drill,
)

JASON = {"end-user": {"exact": "jason"}}
ONLY_RATINGS = {"services": [{"namespace": "default", "name": "ratings"}]}
ONLY_REVIEWS = {"services": [{"namespace": "default", "name": "reviews"}]}
HOSTS = {REVIEWS: REVIEWS_HOST, RATINGS: RATINGS_HOST}
C1 = ClusterId("c1")


def _http(step: dict[str, Any]) -> list[dict[str, Any]]:
    spec = drill(step)
    (manifest,) = render_step(spec, 0, target=C1, hosts=HOSTS).values()
    return list(manifest["spec"]["http"])


def _to(host: str, subset: str | None = None, weight: int | None = None) -> dict[str, Any]:
    destination: dict[str, Any] = {"host": host}
    if subset:
        destination["subset"] = subset
    return {"destination": destination} | ({"weight": weight} if weight is not None else {})


@pytest.mark.parametrize(
    ("step", "http"),
    [
        pytest.param(
            {"delay": {"percentage": 100, "fixedDelay": "7s", "headers": JASON}, **ONLY_RATINGS},
            [
                {"name": "step-one", "match": [{"headers": JASON}],
                 "fault": {"delay": {"percentage": {"value": 100.0}, "fixedDelay": "7s"}},
                 "route": [_to(RATINGS_HOST)]},
                {"name": "default", "route": [_to(RATINGS_HOST)]},
            ],
            id="delay-for-jason",
        ),
        pytest.param(
            {"abort": {"percentage": 100, "httpStatus": 500, "headers": JASON}, **ONLY_RATINGS},
            [
                {"name": "step-one", "match": [{"headers": JASON}],
                 "fault": {"abort": {"percentage": {"value": 100.0}, "httpStatus": 500}},
                 "route": [_to(RATINGS_HOST)]},
                {"name": "default", "route": [_to(RATINGS_HOST)]},
            ],
            id="abort-for-jason",
        ),
        pytest.param(
            {"abort": {"percentage": 10, "httpStatus": 503}, **ONLY_RATINGS},
            [
                {"name": "step-one",
                 "fault": {"abort": {"percentage": {"value": 10.0}, "httpStatus": 503}},
                 "route": [_to(RATINGS_HOST)]},
            ],
            id="abort-everyone",
        ),
        pytest.param(
            {"shift": {"destinations": [{"version": "v1", "weight": 50},
                                        {"version": "v3", "weight": 50}]}, **ONLY_REVIEWS},
            [{"name": "step-one", "route": [_to(REVIEWS_HOST, "version-v1", 50),
                                            _to(REVIEWS_HOST, "version-v3", 50)]}],
            id="canary-v3-50",
        ),
        pytest.param(
            {"shift": {"destinations": [{"cluster": "c1", "weight": 90},
                                        {"cluster": "c2", "weight": 10}]}, **ONLY_REVIEWS},
            [{"name": "step-one", "route": [_to(REVIEWS_HOST, "cluster-c1", 90),
                                            _to(REVIEWS_HOST, "cluster-c2", 10)]}],
            id="shift-between-clusters",
        ),
        pytest.param(
            {"route": {"headers": {"end-user": {"regex": "ja.*"}}, "version": "v2"},
             **ONLY_REVIEWS},
            [
                {"name": "step-one", "match": [{"headers": {"end-user": {"regex": "ja.*"}}}],
                 "route": [_to(REVIEWS_HOST, "version-v2")]},
                {"name": "default", "route": [_to(REVIEWS_HOST)]},
            ],
            id="route-jason-to-v2",
        ),
    ],
)  # fmt: skip
def test_http_routes_per_step_kind(step: dict[str, Any], http: list[dict[str, Any]]) -> None:
    assert _http(step) == http


def test_virtual_service_metadata_is_deterministic_and_labelled() -> None:
    spec = drill({"abort": {"percentage": 1, "httpStatus": 503}, **ONLY_RATINGS}, name="bookinfo")
    rendered = render_step(spec, 0, target=C1, hosts=HOSTS)
    name = virtual_service_name("bookinfo", RATINGS)
    assert (
        name.startswith("meshfed-drill-bookinfo-")
        and len(name) == len("meshfed-drill-bookinfo-") + 8
    )
    assert list(rendered) == [ObjectRef(C1, "VirtualService", "default", name)]
    manifest = rendered[ObjectRef(C1, "VirtualService", "default", name)]
    assert manifest["apiVersion"] == "networking.istio.io/v1"
    assert manifest["metadata"] == {
        "name": name,
        "namespace": "default",
        "labels": {
            "app.kubernetes.io/managed-by": "meshfed",
            "meshfed.io/drill": "bookinfo",
            "meshfed.io/service": "default.ratings",
        },
        "annotations": {
            "meshfed.io/service": "default/ratings",
            "meshfed.io/drill-generation": "3",
            "meshfed.io/drill-step": "step-one",
        },
    }
    assert manifest["spec"]["hosts"] == [RATINGS_HOST]
    assert render_step(spec, 0, target=C1, hosts=HOSTS) == rendered
    assert DRILL_FIELD_MANAGER == "meshfed-drill"


def test_names_differ_per_service_and_drill() -> None:
    names = {virtual_service_name(d, k) for d in ("a", "b") for k in (REVIEWS, RATINGS)}
    assert len(names) == 4


def test_every_drill_service_gets_a_virtual_service_unless_the_step_narrows_it() -> None:
    spec = drill({"abort": {"percentage": 1, "httpStatus": 503}})
    assert len(render_step(spec, 0, target=C1, hosts=HOSTS)) == 2
    assert len(render_step(spec, 0, target=C1, hosts={REVIEWS: REVIEWS_HOST})) == 1


def test_drain_renders_no_drill_object() -> None:
    spec = drill({"drain": {"regions": ["region-a"]}})
    assert render_step(spec, 0, target=C1, hosts=HOSTS) == {}


def test_subsets_are_added_to_the_federated_destination_rule_keeping_its_policy() -> None:
    spec = drill(
        {"shift": {"destinations": [{"version": "v1", "weight": 50},
                                    {"cluster": "c2", "weight": 50}]}, **ONLY_REVIEWS}
    )  # fmt: skip
    service = desired().service(REVIEWS)
    assert service is not None
    federated = destination_rule(service, make_config())
    merged = with_drill_subsets(federated, spec, REVIEWS)
    assert merged["spec"]["subsets"] == [
        {"name": "cluster-c2", "labels": {"meshfed.io/cluster": "c2"}},
        {"name": "version-v1", "labels": {"version": "v1"}},
    ]
    assert merged["spec"]["trafficPolicy"] == federated["spec"]["trafficPolicy"]
    assert merged["spec"]["trafficPolicy"]["tls"] == {"mode": "ISTIO_MUTUAL"}
    assert merged["metadata"]["name"] == federated["metadata"]["name"]
    assert merged["metadata"]["annotations"]["meshfed.io/drill-subsets"] == "drill-1"
    assert "subsets" not in federated["spec"], "the input must not be modified"
    assert with_drill_subsets(federated, spec, RATINGS) is federated

"""Drill specs and a small federation for the drills tests (Bookinfo-like, three regions)."""

from __future__ import annotations

import copy
from typing import Any

from federator.core.desired import DesiredState, compute_desired
from federator.core.drills.parse import parse_drill
from federator.core.drills.spec import DrillSpec
from federator.core.model import ClusterId, ServiceKey
from tests.helpers.federator_builders import REVIEWS, export, make_config, pods, view

RATINGS = ServiceKey("default", "ratings")
REVIEWS_HOST = "reviews.default.svc.clusterset.local"
RATINGS_HOST = "ratings.default.svc.clusterset.local"
HOST_SUFFIX = "clusterset.local"
BY_REGION: dict[str, tuple[ClusterId, ...]] = {
    "region-a": (ClusterId("c1"),),
    "region-b": (ClusterId("c2"),),
    "region-c": (ClusterId("c3"),),
}
ERROR_RATIO = (
    'sum(rate(istio_requests_total{destination_service_name="ratings",response_code=~"5.."}[30s]))'
    ' / sum(rate(istio_requests_total{destination_service_name="ratings"}[30s])) > 0.05'
)


def document(spec: dict[str, Any], name: str = "drill-1") -> dict[str, Any]:
    return {
        "apiVersion": "meshfed.io/v1alpha1",
        "kind": "Drill",
        "metadata": {"name": name, "generation": 3},
        "spec": copy.deepcopy(spec),
    }


def base_spec(step: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A one-step drill over reviews and ratings with a guard."""
    return {
        "services": [
            {"namespace": "default", "name": "reviews"},
            {"namespace": "default", "name": "ratings"},
        ],
        "ttl": "10m",
        "steps": [{"name": "step-one", "duration": "1m", **step}],
        "abortWhen": [{"name": "errors", "expr": ERROR_RATIO, "interval": "1s", "for": "30s"}],
        **extra,
    }


def drill(step: dict[str, Any], name: str = "drill-1", **extra: Any) -> DrillSpec:
    return parse_drill(document(base_spec(step, **extra), name))


def desired() -> DesiredState:
    """reviews: c1 2 pods, c2 1 pod; ratings: c1 1 pod only; c3 exports nothing."""
    views = {
        ClusterId("c1"): view(
            "c1",
            [export("c1"), export("c1", key=RATINGS)],
            {REVIEWS: pods("10.1.0", 2), RATINGS: pods("10.1.1", 1)},
        ),
        ClusterId("c2"): view("c2", [export("c2", minutes=5)], {REVIEWS: pods("10.2.0", 1)}),
        ClusterId("c3"): view("c3"),
    }
    return compute_desired(config=make_config(), views=views)

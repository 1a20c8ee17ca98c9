"""Version subsets across clusters: pod labels carried from EndpointSlices + pods to the model,
one gateway endpoint per (remote cluster, version) weighted by that version's pods, and pod
endpoints labelled in the vpn topology and for a cluster's own pods."""

from __future__ import annotations

from typing import Any

import pytest

from federator.core.convert import endpoints_from_slices
from federator.core.model import Endpoint, Topology
from tests.helpers.federator_builders import (
    REVIEWS,
    by_kind,
    cid,
    export,
    make_config,
    manifests_for,
    view,
)

pytestmark = pytest.mark.unit


def versioned(prefix: str, versions: list[str | None]) -> tuple[Endpoint, ...]:
    return tuple(
        Endpoint.of(f"{prefix}.{i + 1}", {"http": 9080}, labels={"version": v} if v else None)
        for i, v in enumerate(versions)
    )


def bookinfo_views(c1: list[str | None], c2: list[str | None]) -> dict[Any, Any]:
    return {
        cid("c1"): view("c1", [export("c1")], {REVIEWS: versioned("10.1.0", c1)}),
        cid("c2"): view("c2", [export("c2", minutes=5)], {REVIEWS: versioned("10.2.0", c2)}),
        cid("c3"): view("c3"),
    }


def rows(target: str, views: dict[Any, Any], topology: Topology = Topology.GATEWAY) -> list[Any]:
    se = by_kind(manifests_for(make_config(topology=topology), views, target), "ServiceEntry")
    return [
        (
            e["labels"]["topology.istio.io/cluster"],
            e["address"],
            e["labels"].get("version"),
            e.get("weight"),
        )
        for e in se["spec"].get("endpoints", [])
    ]


@pytest.mark.parametrize(
    ("c1", "c2", "target", "expected"),
    [
        pytest.param(
            ["v1", "v2", "v2"],
            ["v3"],
            "c3",
            [
                ("c1", "192.0.2.1", "v1", 1),
                ("c1", "192.0.2.1", "v2", 2),
                ("c2", "192.0.2.2", "v3", 1),
            ],
            id="bookinfo-reviews-one-gateway-endpoint-per-version-weighted-by-pods",
        ),
        pytest.param(
            ["v1", "v2"],
            ["v3", "v3"],
            "c1",
            [
                ("c1", "10.1.0.1", "v1", None),
                ("c1", "10.1.0.2", "v2", None),
                ("c2", "192.0.2.2", "v3", 2),
            ],
            id="own-pods-keep-their-version-remote-gateway-carries-v3",
        ),
        pytest.param(
            [None, None],
            [None],
            "c3",
            [("c1", "192.0.2.1", None, 2), ("c2", "192.0.2.2", None, 1)],
            id="unlabelled-pods-one-endpoint-per-cluster-as-before",
        ),
        pytest.param(
            ["v1", None],
            [],
            "c3",
            [("c1", "192.0.2.1", None, 1), ("c1", "192.0.2.1", "v1", 1)],
            id="mixed-labelled-and-unlabelled-split-no-empty-cluster",
        ),
    ],
)
def test_gateway_endpoints_per_version(
    c1: list[str | None], c2: list[str | None], target: str, expected: list[Any]
) -> None:
    assert rows(target, bookinfo_views(c1, c2)) == expected


def test_vpn_remote_pods_carry_their_version() -> None:
    got = rows("c3", bookinfo_views(["v1"], ["v3"]), Topology.VPN)
    assert got == [("c1", "10.1.0.1", "v1", None), ("c2", "10.2.0.1", "v3", None)]


def test_cluster_and_tls_labels_win_over_a_pod_label_of_the_same_key() -> None:
    ep = Endpoint.of("10.2.0.1", {"http": 9080}, labels={"topology.istio.io/cluster": "evil"})
    views = {
        cid("c1"): view("c1"),
        cid("c2"): view("c2", [export("c2")], {REVIEWS: (ep,)}),
    }
    se = by_kind(manifests_for(make_config(names=("c1", "c2")), views, "c1"), "ServiceEntry")
    (entry,) = se["spec"]["endpoints"]
    assert entry["labels"]["topology.istio.io/cluster"] == "c2"
    assert entry["labels"]["security.istio.io/tlsMode"] == "istio"


def slice_of(*endpoints: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "default", "name": "reviews-abc"},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 9080}],
        "endpoints": list(endpoints),
    }


POD_LABELS = {
    ("default", "reviews-v1-x"): {"app": "reviews", "version": "v1", "pod-template-hash": "x"},
    ("default", "reviews-v3-y"): {"app": "reviews", "version": "v3"},
}


@pytest.mark.parametrize(
    ("endpoint", "subset_labels", "expected"),
    [
        pytest.param(
            {"addresses": ["10.0.0.1"], "targetRef": {"kind": "Pod", "name": "reviews-v1-x"}},
            ("version",),
            (("version", "v1"),),
            id="version-from-the-target-pod-only-configured-keys",
        ),
        pytest.param(
            {"addresses": ["10.0.0.1"], "targetRef": {"kind": "Pod", "name": "reviews-v3-y"}},
            ("version", "app"),
            (("app", "reviews"), ("version", "v3")),
            id="several-configured-keys",
        ),
        pytest.param(
            {"addresses": ["10.0.0.1"], "targetRef": {"kind": "Pod", "name": "gone"}},
            ("version",),
            (),
            id="unknown-pod-no-labels",
        ),
        pytest.param(
            {"addresses": ["10.0.0.1"]},
            ("version",),
            (),
            id="no-target-ref-no-labels",
        ),
        pytest.param(
            {"addresses": ["10.0.0.1"], "targetRef": {"kind": "Node", "name": "reviews-v1-x"}},
            ("version",),
            (),
            id="target-ref-not-a-pod-ignored",
        ),
    ],
)
def test_endpoint_labels_from_pods(
    endpoint: dict[str, Any], subset_labels: tuple[str, ...], expected: tuple[Any, ...]
) -> None:
    (ep,) = endpoints_from_slices(
        [slice_of(endpoint)], pod_labels=POD_LABELS, subset_labels=subset_labels
    )
    assert ep.labels == expected

"""The cache carries the subset labels of the pods behind EndpointSlices onto endpoints, and
a pod's label change touches exactly the services whose slices name it. Pods are optional:
a cluster syncs without them."""

from __future__ import annotations

from typing import Any

import pytest

from federator.core.config import ClusterSettings, KubeconfigFile
from federator.core.mapping import ENDPOINT_SLICES, NAMESPACES, PODS, SERVICE_EXPORTS, SERVICES
from federator.core.model import ClusterId, ServiceKey
from federator.reactor.cache import ClusterCache, held

KEY = ServiceKey("default", "reviews")


def cache_with_slice() -> ClusterCache:
    cache = ClusterCache(
        settings=ClusterSettings(name=ClusterId("c2"), kubeconfig=KubeconfigFile(path="k"))
    )
    for kind in (SERVICE_EXPORTS, NAMESPACES):
        cache.replace(kind, [])
    cache.replace(
        SERVICES,
        [
            {
                "metadata": {
                    "name": "reviews",
                    "namespace": "default",
                    "labels": {"meshfed.io/export": "true"},
                    "resourceVersion": "1",
                },
                "spec": {"ports": [{"name": "http", "port": 9080}]},
            }
        ],
    )
    cache.replace(
        ENDPOINT_SLICES,
        [
            {
                "metadata": {
                    "name": "reviews-abc",
                    "namespace": "default",
                    "labels": {"kubernetes.io/service-name": "reviews"},
                    "resourceVersion": "1",
                },
                "ports": [{"name": "http", "port": 9080}],
                "endpoints": [
                    {"addresses": ["10.2.0.1"], "targetRef": {"kind": "Pod", "name": "r-v3"}},
                    {"addresses": ["10.2.0.2"], "targetRef": {"kind": "Pod", "name": "r-v2"}},
                ],
            }
        ],
    )
    return cache


def pod(name: str, version: str, rv: str = "1") -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": {"app": "reviews", "version": version},
            "resourceVersion": rv,
            "managedFields": [{"big": "x" * 100}],
        },
        "spec": {"containers": [{"name": "app"}]},
        "status": {"phase": "Running"},
    }


def labels(cache: ClusterCache) -> dict[str, tuple[tuple[str, str], ...]]:
    return {ep.address: ep.labels for ep in cache.view().endpoints[KEY]}


def test_synced_without_pods_endpoints_unlabelled() -> None:
    cache = cache_with_slice()
    assert cache.synced and cache.healthy
    assert labels(cache) == {"10.2.0.1": (), "10.2.0.2": ()}


@pytest.mark.parametrize(
    ("event", "expected_v3"),
    [
        pytest.param("ADDED", (("version", "v3"),), id="pod-added-labels-endpoint"),
        pytest.param("DELETED", (), id="pod-deleted-label-gone"),
    ],
)
def test_pod_events_touch_the_services_that_name_them(
    event: str, expected_v3: tuple[tuple[str, str], ...]
) -> None:
    cache = cache_with_slice()
    cache.replace(PODS, [pod("r-v2", "v2")])
    if event == "DELETED":
        cache.apply_event(PODS, "ADDED", pod("r-v3", "v3"))
    affected = cache.apply_event(PODS, event, pod("r-v3", "v3", rv="2"))
    assert affected.keys == {KEY}
    assert labels(cache) == {"10.2.0.1": expected_v3, "10.2.0.2": (("version", "v2"),)}


def test_pods_as_the_watch_hands_them_slimmed_label_endpoints() -> None:
    cache = cache_with_slice()
    cache.replace(PODS, [held(pod("r-v2", "v2"), PODS)])
    affected = cache.apply_event(PODS, "ADDED", held(pod("r-v3", "v3"), PODS))
    assert affected.keys == {KEY}
    assert labels(cache) == {"10.2.0.1": (("version", "v3"),), "10.2.0.2": (("version", "v2"),)}


def test_pod_status_update_touches_nothing() -> None:
    cache = cache_with_slice()
    cache.replace(PODS, [pod("r-v3", "v3")])
    update = pod("r-v3", "v3", rv="2")
    update["status"] = {"phase": "Running", "podIP": "10.2.0.1"}
    assert not cache.apply_event(PODS, "MODIFIED", update)


def test_pod_no_slice_names_touches_nothing_and_is_stored_as_its_subset_labels() -> None:
    cache = cache_with_slice()
    affected = cache.apply_event(PODS, "ADDED", pod("unrelated", "v1"))
    assert not affected
    assert cache._pods == {"default/unrelated": '{"version":"v1"}'}


def slice_naming(service: str, slice_name: str, pods: list[str]) -> dict[str, Any]:
    return {
        "metadata": {
            "name": slice_name,
            "namespace": "default",
            "labels": {"kubernetes.io/service-name": service},
            "resourceVersion": "1",
        },
        "ports": [{"name": "http", "port": 9080}],
        "endpoints": [
            {"addresses": [f"10.3.0.{i}"], "targetRef": {"kind": "Pod", "name": p}}
            for i, p in enumerate(pods, 1)
        ],
    }


RATINGS, DETAILS = ServiceKey("default", "ratings"), ServiceKey("default", "details")
SLICES = {
    "ratings-a": slice_naming("ratings", "ratings-a", ["shared"]),
    "ratings-b": slice_naming("ratings", "ratings-b", ["shared"]),  # mid-move between slices
    "details-a": slice_naming("details", "details-a", ["shared", "d-only"]),
}


@pytest.mark.parametrize(
    ("removed", "shared_touches", "d_only_touches"),
    [
        pytest.param("ratings-a", {RATINGS, DETAILS}, {DETAILS}, id="ratings-second-slice-kept"),
        pytest.param("ratings-b", {RATINGS, DETAILS}, {DETAILS}, id="ratings-first-slice-kept"),
        pytest.param("details-a", {RATINGS}, set(), id="details-gone"),
    ],
)
def test_pod_named_by_several_slices_touches_each_service_until_none_names_it(
    removed: str, shared_touches: set[ServiceKey], d_only_touches: set[ServiceKey]
) -> None:
    cache = cache_with_slice()
    cache.replace(ENDPOINT_SLICES, list(SLICES.values()))
    assert cache.apply_event(PODS, "ADDED", pod("shared", "v1")).keys == {RATINGS, DETAILS}
    cache.apply_event(ENDPOINT_SLICES, "DELETED", SLICES[removed])
    assert cache.apply_event(PODS, "MODIFIED", pod("shared", "v2", rv="2")).keys == shared_touches
    assert cache.apply_event(PODS, "ADDED", pod("d-only", "v1")).keys == d_only_touches


def test_slice_removed_then_pod_change_touches_nothing() -> None:
    cache = cache_with_slice()
    cache.replace(ENDPOINT_SLICES, [])
    assert not cache.apply_event(PODS, "ADDED", pod("r-v3", "v3"))

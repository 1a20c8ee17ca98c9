"""The cache carries the subset labels of the pods behind EndpointSlices onto endpoints, and
a pod's label change touches exactly the services whose slices name it. Pods are optional:
a cluster syncs without them."""

from __future__ import annotations

from typing import Any

import pytest

from federator.core.config import ClusterSettings, KubeconfigFile
from federator.core.mapping import ENDPOINT_SLICES, NAMESPACES, PODS, SERVICE_EXPORTS, SERVICES
from federator.core.model import ClusterId, ServiceKey
from federator.reactor.cache import ClusterCache, decode

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


def test_pod_no_slice_names_touches_nothing_and_is_stored_slim() -> None:
    cache = cache_with_slice()
    affected = cache.apply_event(PODS, "ADDED", pod("unrelated", "v1"))
    assert not affected
    stored = decode(PODS, cache._objects[PODS][("default", "unrelated")])  # held slim
    assert stored == {
        "metadata": {
            "name": "unrelated",
            "namespace": "default",
            "labels": {"app": "reviews", "version": "v1"},
            "resourceVersion": "1",
        }
    }


def test_slice_removed_then_pod_change_touches_nothing() -> None:
    cache = cache_with_slice()
    cache.replace(ENDPOINT_SLICES, [])
    assert not cache.apply_event(PODS, "ADDED", pod("r-v3", "v3"))

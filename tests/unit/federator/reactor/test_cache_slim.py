"""The caches keep only what the federator reads: slimming never changes what the model is
converted to (endpoints, ports, export), drops the heavy fields, and is idempotent; the held
form the watches hand over fills a cache exactly as the raw objects do."""

from __future__ import annotations

import json
from typing import Any

import pytest

from federator.core import convert
from federator.core.config import ClusterSettings, KubeconfigFile
from federator.core.mapping import ENDPOINT_SLICES, NAMESPACES, PODS, SERVICE_EXPORTS, SERVICES
from federator.core.model import ClusterId, ServiceKey
from federator.reactor.cache import ClusterCache, Held, decode, encode, held, slim
from federator.reactor.pods import SlimPod, slim_pod

MANAGED = [{"manager": "kube-controller-manager", "operation": "Update", "fieldsV1": {"f:x": {}}}]
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def full_meta(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": "default",
        "uid": "u-1",
        "resourceVersion": "7",
        "creationTimestamp": "2026-01-01T00:00:00Z",
        "generation": 3,
        "labels": {"meshfed.io/export": "true", "kubernetes.io/service-name": "reviews"},
        "annotations": {LAST_APPLIED: "{...whole object...}", "networking.istio.io/x": "y"},
        "ownerReferences": [{"kind": "Service", "name": name, "uid": "u-0"}],
        "managedFields": MANAGED,
        **extra,
    }


SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": full_meta("reviews"),
    "spec": {
        "type": "ClusterIP",
        "ports": [{"name": "http", "port": 9080}],
        "selector": {"a": "b"},
    },
    "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.9"}]}},
}
SLICE = {
    "apiVersion": "discovery.k8s.io/v1",
    "kind": "EndpointSlice",
    "metadata": full_meta("reviews-abc"),
    "addressType": "IPv4",
    "ports": [{"name": "http", "port": 9080, "protocol": "TCP"}],
    "endpoints": [
        {
            "addresses": ["10.1.0.2"],
            "conditions": {"ready": True, "serving": True, "terminating": False},
            "nodeName": "node-1",
            "zone": "z1",
            "hints": {"forZones": [{"name": "z1"}]},
            "targetRef": {"kind": "Pod", "name": "p1", "namespace": "default", "uid": "u-9"},
        },
        {"addresses": ["10.1.0.3"], "conditions": {"ready": False}},
        {"addresses": ["10.1.0.4", "10.1.0.5"], "zone": "z2"},
        "not-an-endpoint",
    ],
}
POD_LABELS = {("default", "p1"): {"version": "v2"}}
POD = {"metadata": full_meta("p1", labels={"app": "reviews", "version": "v2"})}
KEY = ServiceKey(namespace="default", name="reviews")


@pytest.mark.parametrize(
    ("kind", "obj"),
    [
        pytest.param(SERVICES, SERVICE, id="service"),
        pytest.param(ENDPOINT_SLICES, SLICE, id="endpointslice"),
        pytest.param(SERVICE_EXPORTS, {"metadata": full_meta("reviews")}, id="serviceexport"),
        pytest.param(NAMESPACES, {"metadata": full_meta("default")}, id="namespace"),
    ],
)
def test_slim_drops_heavy_fields_and_is_idempotent(kind: str, obj: dict[str, Any]) -> None:
    once = slim(obj, kind)
    assert slim(once, kind) == once
    assert decode(kind, encode(once)) == once  # as the cache holds it
    text = json.dumps(once)
    for dropped in ("managedFields", LAST_APPLIED, "ownerReferences", "nodeName", "hints"):
        assert dropped not in text
    assert once["metadata"]["name"] == obj["metadata"]["name"]
    assert once["metadata"]["labels"] == obj["metadata"]["labels"]
    assert obj["metadata"]["managedFields"] == MANAGED  # the input is not modified


def test_slim_pod_keeps_its_name_and_subset_labels_as_shared_strings() -> None:
    obj = {"metadata": full_meta("p1", labels={"app": "reviews", "version": "v2", "x": "y"})}
    other = {"metadata": full_meta("p2", labels={"version": "v2", "app": "other"})}
    once = slim_pod(obj)
    assert once == SlimPod("default/p1", '{"version":"v2"}')
    assert slim_pod(once) is once
    assert held(obj, PODS) == once
    assert once.labels is slim_pod(other).labels  # one string per distinct label set


@pytest.mark.parametrize(
    ("kind", "obj"),
    [
        pytest.param(SERVICES, SERVICE, id="service"),
        pytest.param(ENDPOINT_SLICES, SLICE, id="endpointslice"),
        pytest.param(NAMESPACES, {"metadata": full_meta("default")}, id="namespace"),
    ],
)
def test_held_form_is_the_key_and_the_encoded_slim_object(kind: str, obj: dict[str, Any]) -> None:
    form = held(obj, kind)
    assert isinstance(form, Held)
    assert form.key == ("default", obj["metadata"]["name"])
    assert decode(kind, form.blob) == slim(obj, kind)


@pytest.mark.parametrize(
    "event", [pytest.param("ADDED", id="added"), pytest.param("DELETED", id="deleted")]
)
def test_held_objects_fill_a_cache_as_raw_ones_do(event: str) -> None:
    settings = ClusterSettings(name=ClusterId("c1"), kubeconfig=KubeconfigFile(path="k"))
    raw, formed = ClusterCache(settings=settings), ClusterCache(settings=settings)
    for cache, form in ((raw, as_listed), (formed, held)):
        assert cache.replace(SERVICES, [form(SERVICE, SERVICES)]).keys
        cache.replace(ENDPOINT_SLICES, [form(SLICE, ENDPOINT_SLICES)])
        cache.replace(PODS, [form(POD, PODS)])
        cache.apply_event(ENDPOINT_SLICES, event, form(SLICE, ENDPOINT_SLICES))
    assert formed.view() == raw.view()
    assert formed.endpoints(KEY) == raw.endpoints(KEY)
    assert (event == "ADDED") == bool(raw.endpoints(KEY))


def as_listed(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    return obj


def test_slim_keeps_what_the_model_reads() -> None:
    slice_before = convert.endpoints_from_slices([SLICE], pod_labels=POD_LABELS)
    slice_after = convert.endpoints_from_slices(
        [slim(SLICE, ENDPOINT_SLICES)], pod_labels=POD_LABELS
    )
    assert slice_after == slice_before
    assert [e.labels for e in slice_after if e.address == "10.1.0.2"] == [(("version", "v2"),)]
    service = slim(SERVICE, SERVICES)
    assert convert.service_ports(service) == convert.service_ports(SERVICE)
    assert convert.exported_service(ClusterId("c1"), service, None) == convert.exported_service(
        ClusterId("c1"), SERVICE, None
    )
    assert service["status"] == SERVICE["status"]  # gateway addresses
    assert service["spec"]["selector"] == {"a": "b"}  # access policies
    assert service["metadata"]["annotations"] == {"networking.istio.io/x": "y"}
    assert service["metadata"]["uid"] == "u-1"  # conflict Events name the object


def _slice_named(name: str, address: str) -> dict[str, Any]:
    return {
        **SLICE,
        "metadata": {**full_meta(name), "uid": f"u-{name}"},
        "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
    }


def test_a_service_with_one_then_several_then_one_slice_keeps_all_its_endpoints() -> None:
    cache = ClusterCache(
        settings=ClusterSettings(name=ClusterId("c1"), kubeconfig=KubeconfigFile(path="k"))
    )
    cache.replace(SERVICES, [SERVICE])
    first, second, third = (
        _slice_named("reviews-a", "10.1.0.1"),
        _slice_named("reviews-b", "10.1.0.2"),
        _slice_named("reviews-c", "10.1.0.3"),
    )

    def addresses() -> list[str]:
        return sorted(e.address for e in cache.endpoints(KEY))

    cache.replace(ENDPOINT_SLICES, [first])
    assert addresses() == ["10.1.0.1"]
    cache.apply_event(ENDPOINT_SLICES, "ADDED", second)
    cache.apply_event(ENDPOINT_SLICES, "MODIFIED", second)  # the same slice again
    cache.apply_event(ENDPOINT_SLICES, "ADDED", third)
    assert addresses() == ["10.1.0.1", "10.1.0.2", "10.1.0.3"]
    cache.apply_event(ENDPOINT_SLICES, "DELETED", first)
    cache.apply_event(ENDPOINT_SLICES, "DELETED", third)
    assert addresses() == ["10.1.0.2"]
    cache.apply_event(ENDPOINT_SLICES, "DELETED", second)
    assert addresses() == []
    cache.apply_event(ENDPOINT_SLICES, "ADDED", third)
    assert addresses() == ["10.1.0.3"]

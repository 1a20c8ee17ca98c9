"""The caches keep only what the federator reads: slimming never changes what the model is
converted to (endpoints, ports, export), drops the heavy fields, and is idempotent (the
watches slim as they decode and the cache slims again on insert)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from federator.core import convert
from federator.core.mapping import ENDPOINT_SLICES, NAMESPACES, PODS, SERVICE_EXPORTS, SERVICES
from federator.core.model import ClusterId
from federator.reactor.cache import decode, encode, slim

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
    once = slim(obj, PODS)
    assert once == {"ref": "default/p1", "labels": '{"version":"v2"}'}
    assert slim(once, PODS) == once
    assert once["labels"] is slim(other, PODS)["labels"]  # one string per distinct label set


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

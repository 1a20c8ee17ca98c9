"""Every rendered manifest validates against Istio's CRD OpenAPI v3 schema (v1 version).

The schema is read from the Istio CRDs `make setup` fetched from the pinned `istio.io/api` Go
module (``$MESHFED_CACHE/crds/istio.yaml``, the very file the sandbox installs; never copied
into the repo). The
checker is a small structural validator - type, properties (unknown fields are errors: the
apiserver would silently prune them), required, enum, bounds, oneOf/anyOf/allOf/not - plus
the CEL rules of these CRDs that meshfed could plausibly violate, re-stated in Python.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from federator.core.model import ClusterId, ClusterView, Endpoint, ServicePort, Topology
from meshfed.sandbox.components import cache_dir
from tests.helpers.federator_builders import (
    HTTP,
    REVIEWS,
    acceptance_views,
    cid,
    export,
    make_config,
    manifests_for,
    pods,
    view,
)

CRDS = cache_dir() / "crds" / "istio.yaml"
_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


def errors(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    out: list[str] = []
    if value is None:
        return [] if schema.get("nullable") else [f"{path}: null"]
    expected = schema.get("type")
    if expected:
        ok = isinstance(value, _TYPES[expected]) and not (
            expected in ("integer", "number") and isinstance(value, bool)
        )
        if not ok:
            return [f"{path}: expected {expected}, got {type(value).__name__}"]
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{path}: {value!r} not in {schema['enum']}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            out.append(f"{path}: {value} < {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            out.append(f"{path}: {value} > {schema['maximum']}")
    if isinstance(value, str) and len(value) > schema.get("maxLength", 1 << 30):
        out.append(f"{path}: longer than {schema['maxLength']}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", 1 << 30):
            out.append(f"{path}: {len(value)} items out of bounds")
        for i, item in enumerate(value):
            out += errors(item, schema.get("items", {}), f"{path}[{i}]")
    if isinstance(value, dict):
        if len(value) > schema.get("maxProperties", 1 << 30):
            out.append(f"{path}: too many properties")
        for name in schema.get("required", []):
            if name not in value:
                out.append(f"{path}: missing required {name}")
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, sub in value.items():
            if props is not None and key in props:
                out += errors(sub, props[key], f"{path}.{key}")
            elif isinstance(extra, dict):
                out += errors(sub, extra, f"{path}.{key}")
            elif props is not None and not schema.get("x-kubernetes-preserve-unknown-fields"):
                out.append(f"{path}.{key}: unknown field (would be pruned)")
    for sub in schema.get("allOf", []):
        out += errors(value, sub, path)
    if "anyOf" in schema and not any(not errors(value, s, path) for s in schema["anyOf"]):
        out.append(f"{path}: matches none of anyOf")
    if "oneOf" in schema and sum(not errors(value, s, path) for s in schema["oneOf"]) != 1:
        out.append(f"{path}: does not match exactly one of oneOf")
    if "not" in schema and not errors(value, schema["not"], path):
        out.append(f"{path}: matches a 'not' schema")
    return out


@pytest.fixture(scope="module")
def schemas() -> dict[str, dict[str, Any]]:
    if not CRDS.exists():
        pytest.fail(f"{CRDS} is missing: run `make setup` (scripts/fetch-manifests.sh)")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    found: dict[str, dict[str, Any]] = {}
    for doc in yaml.load_all(CRDS.read_text(), Loader=loader):
        if not doc or doc.get("kind") != "CustomResourceDefinition":
            continue
        kind = doc["spec"]["names"]["kind"]
        if kind not in ("ServiceEntry", "DestinationRule"):
            continue
        (v1,) = [v for v in doc["spec"]["versions"] if v["name"] == "v1"]
        assert v1["served"], f"{kind} v1 is not served"
        root = v1["schema"]["openAPIV3Schema"]
        # apiVersion/kind/metadata are implicit in every CRD (the apiserver adds them).
        implicit = {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        }
        found[kind] = {**root, "properties": {**implicit, **root["properties"]}}
    assert set(found) == {"ServiceEntry", "DestinationRule"}
    return found


_PORT_NAME = re.compile(r"^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?$")


def cel_errors(manifest: dict[str, Any]) -> list[str]:
    """The CRD's x-kubernetes-validations rules meshfed could break."""
    if manifest["kind"] != "ServiceEntry":
        return []
    spec = manifest["spec"]
    out = []
    numbers = [p["number"] for p in spec.get("ports", [])]
    if len(numbers) != len(set(numbers)):
        out.append("port number cannot be duplicated")
    if any(not 0 < n <= 65535 for n in numbers):
        out.append("port must be between 1-65535")
    if spec.get("resolution", "NONE") == "NONE" and "endpoints" in spec:
        out.append("NONE mode cannot set endpoints")
    if "*" in spec["hosts"]:
        out.append("hostname cannot be wildcard")
    for ep in spec.get("endpoints", []):
        for name, port in ep.get("ports", {}).items():
            if len(name) >= 63 or not _PORT_NAME.match(name):
                out.append(f"port name must be valid: {name!r}")
            if not 0 < port <= 65535:
                out.append("port must be between 1-65535")
    return out


def _multiport_views() -> dict[ClusterId, ClusterView]:
    grpc = ServicePort("grpc-api", 9090, app_protocol="kubernetes.io/h2c")
    unnamed_conflict = ServicePort("http", 8080)
    eps = (Endpoint.of("10.1.0.1", {"http": 9080, "grpc-api": 9091}, zone="region-a-2"),)
    return {
        cid("c1"): view("c1", [export("c1", ports=(HTTP, grpc))], {REVIEWS: eps}),
        cid("c2"): view(
            "c2", [export("c2", minutes=1, ports=(unnamed_conflict,))], {REVIEWS: pods("10.2.0", 3)}
        ),
        cid("c3"): view("c3"),
    }


SCENARIOS = [
    pytest.param(make_config(), acceptance_views(), id="gateway"),
    pytest.param(make_config(topology=Topology.VPN), acceptance_views(), id="vpn"),
    pytest.param(make_config(addresses={"c1": "gw.c1.example.com"}), acceptance_views(), id="dns"),
    pytest.param(make_config(regions=()), _multiport_views(), id="multiport-no-failover"),
    pytest.param(
        make_config(),
        {
            cid("c1"): view("c1", [export("c1", ports=(ServicePort("", 80),))]),
            cid("c2"): view("c2"),
            cid("c3"): view("c3"),
        },
        id="unnamed-port-no-endpoints",
    ),
]


@pytest.mark.parametrize(("config", "views"), SCENARIOS)
@pytest.mark.parametrize("target", ["c1", "c2", "c3"])
def test_rendered_manifests_match_crd_schema(
    schemas: dict[str, dict[str, Any]],
    config: Any,
    views: dict[ClusterId, ClusterView],
    target: str,
) -> None:
    manifests = manifests_for(config, views, target)
    assert len(manifests) == 2
    for manifest in manifests:
        problems = errors(manifest, schemas[manifest["kind"]]) + cel_errors(manifest)
        assert problems == [], manifest["kind"]


def test_validator_catches_mistakes(schemas: dict[str, dict[str, Any]]) -> None:
    (se, dr) = sorted(
        manifests_for(make_config(), acceptance_views(), "c3"),
        key=lambda m: m["kind"] == "DestinationRule",
    )
    bad = {**se, "spec": {**se["spec"], "location": "INSIDE", "endpoint": []}}
    found = errors(bad, schemas["ServiceEntry"])
    assert any("INSIDE" in e for e in found) and any("endpoint: unknown" in e for e in found)
    bad_dr = {**dr, "spec": {**dr["spec"], "trafficPolicy": {"tls": {"mode": 1}}}}
    assert errors(bad_dr, schemas["DestinationRule"])

"""The Drill CRD: structural, and its schema covers exactly the fields the parser reads."""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml

from federator.core.drills.parse import FIELDS
from federator.core.drills.spec import API_VERSION, KIND


def _crd() -> dict[str, Any]:
    text = resources.files("federator").joinpath("drills_crd.yaml").read_text()
    crd = yaml.safe_load(text)
    assert isinstance(crd, dict)
    return crd


def _version() -> dict[str, Any]:
    (version,) = _crd()["spec"]["versions"]
    assert isinstance(version, dict)
    return version


def _node(schema: dict[str, Any], path: str) -> dict[str, Any]:
    """The schema node at a ``FIELDS`` path (``a.b[]``, ``a.headers{}``)."""
    node = schema
    for part in path.split(".")[1:]:
        name = part.rstrip("[]{}")
        node = node["properties"][name]
        if part.endswith("[]"):
            assert node["type"] == "array", path
            node = node["items"]
        elif part.endswith("{}"):
            assert node["type"] == "object", path
            node = node["additionalProperties"]
    return node


def test_identity_matches_the_parser() -> None:
    crd = _crd()
    group, version = API_VERSION.split("/")
    assert crd["metadata"]["name"] == f"drills.{group}"
    assert crd["spec"]["group"] == group
    assert crd["spec"]["names"]["kind"] == KIND
    assert _version()["name"] == version


def test_schema_properties_equal_the_parsers_fields_at_every_path() -> None:
    spec = _version()["schema"]["openAPIV3Schema"]["properties"]["spec"]
    for path, fields in FIELDS.items():
        node = _node({"properties": {"spec": spec}}, "x." + path)
        assert set(node["properties"]) == set(fields), path


def test_every_object_in_the_schema_is_reachable_from_fields() -> None:
    """No schema object the parser does not know about (it would accept what we refuse)."""
    spec = _version()["schema"]["openAPIV3Schema"]["properties"]["spec"]
    known = {"spec" + p[len("spec") :] for p in FIELDS}
    found: list[str] = []

    def walk(node: dict[str, Any], path: str) -> None:
        if "properties" in node:
            found.append(path)
            for name, child in node["properties"].items():
                walk(child, f"{path}.{name}")
        if node.get("type") == "array":
            walk(node["items"], path + "[]")
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], path + "{}")

    walk(spec, "spec")
    assert set(found) == known


def test_structural_schema() -> None:
    schema = _version()["schema"]["openAPIV3Schema"]

    def walk(node: dict[str, Any], path: str) -> None:
        assert "type" in node, f"{path} has no type (a structural schema needs one everywhere)"
        for name, child in (node.get("properties") or {}).items():
            walk(child, f"{path}.{name}")
        if node["type"] == "array":
            assert "maxItems" in node or path.startswith("status"), (
                f"{path}: CEL cost needs maxItems"
            )
            walk(node["items"], path + "[]")
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], path + "{}")

    walk(schema, "")


def test_status_subresource_printer_columns_and_rules() -> None:
    version = _version()
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["Phase"] == ".status.phase"
    assert columns["Step"] == ".status.step"
    assert columns["Age"] == ".metadata.creationTimestamp"
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    step = spec["properties"]["steps"]["items"]
    shift = step["properties"]["shift"]
    assert any("sum() == 100" in r["rule"] for r in shift["x-kubernetes-validations"])
    delay = step["properties"]["delay"]["properties"]["percentage"]
    assert (delay["minimum"], delay["maximum"]) == (0, 100)
    assert "x-kubernetes-validations" not in spec["properties"]["halt"], "halt must stay mutable"
    assert all(
        any(r["rule"] == "self == oldSelf" for r in node.get("x-kubernetes-validations", []))
        for name, node in spec["properties"].items()
        if name != "halt"
    )

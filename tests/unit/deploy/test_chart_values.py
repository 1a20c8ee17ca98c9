"""The chart's values, schema and documentation agree: every key of values.yaml is described in
values.schema.json (so ``helm`` refuses a misspelt key instead of ignoring it), every default
passes the schema's own types, and the values table in docs/install.md is exactly the one
generated from the two (on a mismatch the message holds the table to paste)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers.paths import REPO_ROOT

CHART = REPO_ROOT / "deploy" / "multicluster" / "charts" / "meshfed"
INSTALL_MD = REPO_ROOT / "docs" / "install.md"
START, END = "<!-- values-table:start -->", "<!-- values-table:end -->"
JSON_TYPES = {
    "string": str,
    "integer": int,
    "boolean": bool,
    "object": dict,
    "array": list,
}


def _load() -> tuple[dict[str, Any], dict[str, Any]]:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())
    return values, schema


def leaves(
    values: Mapping[str, Any], schema: Mapping[str, Any], prefix: str = ""
) -> Iterator[tuple[str, Any, Mapping[str, Any]]]:
    """(dotted path, default, schema) of every value; a map the schema describes key by key is
    descended into, a free-form one (resources, settings) is one value."""
    for key, value in values.items():
        node = (schema.get("properties") or {}).get(key)
        path = f"{prefix}{key}"
        if node is None:
            raise AssertionError(f"{path} is in values.yaml but not in values.schema.json")
        if isinstance(value, dict) and node.get("properties") and node.get("type") == "object":
            yield from leaves(value, node, path + ".")
        else:
            yield path, value, node


def _default(value: Any) -> str:
    text = json.dumps(value, separators=(", ", ": ")) if value != "" else '""'
    return f"`{text}`".replace("|", "\\|")


def values_table() -> str:
    values, schema = _load()
    rows = ["| value | default | meaning |", "|---|---|---|"]
    for path, value, node in leaves(values, schema):
        rows.append(f"| `{path}` | {_default(value)} | {node['description']} |")
    return "\n".join(rows)


@pytest.mark.parametrize(
    ("path", "value", "node"),
    [pytest.param(p, v, n, id=p) for p, v, n in leaves(*_load())],
)
def test_every_value_is_described_and_typed(path: str, value: Any, node: Mapping[str, Any]) -> None:
    assert node.get("description"), f"{path} has no description in values.schema.json"
    types = node.get("type")
    if types is None:
        return
    allowed = tuple(JSON_TYPES[t] for t in ([types] if isinstance(types, str) else types))
    assert isinstance(value, allowed), f"{path} default {value!r} is not {types}"
    if "enum" in node:
        assert value in node["enum"], f"{path} default {value!r} is not one of {node['enum']}"


def test_schema_refuses_unknown_keys_everywhere() -> None:
    """Every object the schema describes key by key is closed (additionalProperties false)."""

    def walk(node: Mapping[str, Any], path: str) -> Iterator[str]:
        if node.get("properties"):
            if node.get("additionalProperties") is not False and path != "federator.settings":
                yield path or "(top level)"
            for key, child in node["properties"].items():
                if isinstance(child, Mapping):
                    yield from walk(child, f"{path}.{key}".lstrip("."))
        if isinstance(node.get("items"), Mapping):
            yield from walk(node["items"], f"{path}[]")

    _, schema = _load()
    assert list(walk(schema, "")) == []


def test_install_md_has_the_generated_values_table() -> None:
    text = INSTALL_MD.read_text()
    assert START in text and END in text, f"docs/install.md lacks the {START} ... {END} markers"
    documented = text.split(START, 1)[1].split(END, 1)[0].strip()
    expected = values_table()
    assert documented == expected, "docs/install.md's values table is stale; paste:\n" + expected


def test_default_image_tag_is_the_app_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    assert f'version = "{chart["appVersion"]}"' in pyproject, "Chart appVersion != meshfed version"
    assert Path(CHART / "values.yaml").read_text().count('tag: ""') == 1

"""Typed settings from plain mappings (YAML) and ``path.to.field=value`` overrides.

Generic over frozen dataclasses: each field's type hint decides the conversion (bool, int,
float, str, Path, ``X | None``, ``tuple[T, ...]``, ``Mapping[str, str]``, nested
dataclasses), and every error is a ``ConfigError`` naming the dotted path and what was
expected, so that a typo in collectors.yaml stops start-up with the fix in the message.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from collectors._core.errors import ConfigError

D = TypeVar("D")


def build(cls: type[D], data: object, path: str) -> D:
    """An instance of the dataclass ``cls`` from ``data`` (a mapping; ``None`` = defaults)."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path} must be a mapping of settings; got {data!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            raise ConfigError(
                f"{path}.{key} is not a known setting; known: {', '.join(sorted(known))}"
            )
        values[key] = convert(hints[key], value, f"{path}.{key}")
    return cls(**values)


def convert(hint: Any, value: object, path: str) -> Any:
    """``value`` converted to the type ``hint`` (errors name ``path``)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return convert(inner[0], value, path)
    if dataclasses.is_dataclass(hint):
        return build(hint, value, path)  # type: ignore[arg-type]
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{path} must be a list; got {value!r}")
        return tuple(convert(args[0], v, f"{path}[{i}]") for i, v in enumerate(value))
    if origin in (Mapping, dict) or hint in (Mapping, dict):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path} must be a mapping of name: value; got {value!r}")
        return {str(k): _scalar_text(v, f"{path}.{k}") for k, v in value.items()}
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path} must be true or false; got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path} must be an integer; got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{path} must be a number; got {value!r}")
        return float(value)
    if hint is str:
        return _scalar_text(value, path)
    if hint is Path:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{path} must be a file or directory path; got {value!r}")
        return Path(value).expanduser()
    raise ConfigError(f"{path}: unsupported setting type {hint!r}")  # a programming error


def _scalar_text(value: object, path: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        raise ConfigError(
            f"{path} must be a string; got {value!r}: YAML reads an unquoted yes, no, on, off,"
            " true or false as a boolean, so quote the word (e.g. 'no')"
        )
    if not isinstance(value, int | float):
        raise ConfigError(f"{path} must be a string; got {value!r}")
    return str(value)


def set_path(data: MutableMapping[str, Any], dotted: str, value: object) -> None:
    """Set ``a.b.c`` in nested mappings, creating the intermediate ones."""
    parts = dotted.split(".")
    if not all(parts):
        raise ConfigError(f"--set {dotted!r}: the path needs names between the dots")
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, MutableMapping):
            raise ConfigError(f"--set {dotted!r}: {part} is not a section")
        node = child
    node[parts[-1]] = value


def parse_assignment(text: str) -> tuple[str, object]:
    """``path=value`` with the value read as YAML (``8``, ``true``, ``[a, b]``, ``text``)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {text!r} must look like section.field=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {text!r}: the value is not valid YAML: {e}") from e
    return key.strip(), value

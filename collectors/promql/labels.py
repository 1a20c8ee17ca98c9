"""Label sets as the engine holds them: sorted ``(name, value)`` tuples, and their helpers.

Labels are a tuple of pairs sorted by name, so they hash and compare cheaply and two equal
label sets are equal tuples. This module sits below both representations of values (the
per-step lists of ``values`` and the numpy blocks of ``columns``), which share it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

Labels = tuple[tuple[str, str], ...]
"""Sorted ``(name, value)`` pairs, without empty values."""

Sample = tuple[Labels, float]
"""One element of an instant vector at one step."""

METRIC_NAME = "__name__"


def labels_from(mapping: Mapping[str, str]) -> Labels:
    """Labels from a mapping, dropping empty values (an empty label is an absent label)."""
    return tuple(sorted((k, v) for k, v in mapping.items() if v != ""))


def get_label(labels: Labels, name: str) -> str:
    for key, value in labels:
        if key == name:
            return value
    return ""


def drop_name(labels: Labels) -> Labels:
    if labels and labels[0][0] == METRIC_NAME:
        return labels[1:]
    return tuple(pair for pair in labels if pair[0] != METRIC_NAME)


def set_label(labels: Labels, name: str, value: str) -> Labels:
    """A copy with ``name`` set to ``value`` (removed when ``value`` is empty)."""
    kept = [pair for pair in labels if pair[0] != name]
    if value != "":
        kept.append((name, value))
        kept.sort()
    return tuple(kept)


def keep_only(labels: Labels, names: Iterable[str]) -> Labels:
    wanted = set(names)
    return tuple(pair for pair in labels if pair[0] in wanted)


def drop_labels(labels: Labels, names: Iterable[str]) -> Labels:
    unwanted = set(names)
    return tuple(pair for pair in labels if pair[0] not in unwanted)


def format_labels(labels: Labels) -> str:
    """Prometheus's ``labels.String()``: ``{a="1", b="2"}``."""
    return "{" + ", ".join(f'{k}="{_escape(v)}"' for k, v in labels) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def has_duplicates(vector: list[Sample]) -> bool:
    return len({labels for labels, _ in vector}) != len(vector)

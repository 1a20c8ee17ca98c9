"""Scalar values of a Drill spec: durations, PromQL, names, strings. Each converter takes the
value and its field path, and raises ``DrillSpecError`` naming that path."""

from __future__ import annotations

import re
from typing import Any

from federator.errors import DrillSpecError

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
MAX_NAME = 40
"""Drill, step and guard names are short DNS labels: label values and parts of object names."""


def nonempty(value: Any, path: str) -> str:
    """A string with something other than white space in it."""
    if not isinstance(value, str) or not value.strip():
        raise DrillSpecError(path, "must be a non-empty string")
    return value


def dns_label(value: Any, path: str) -> str:
    text = nonempty(value, path)
    if len(text) > MAX_NAME or not _DNS_LABEL.match(text):
        raise DrillSpecError(
            path, f'"{text}" must be a DNS label: a-z, 0-9 and "-", at most {MAX_NAME} characters'
        )
    return text


def duration_seconds(value: Any, path: str) -> float:
    """A Prometheus duration (``30s``, ``5m``, ``1h30m``, ``500ms``) in seconds, > 0."""
    if not isinstance(value, str):
        raise DrillSpecError(path, f'must be a duration string like "30s" or "5m", not {value!r}')
    import promql_parser  # noqa: PLC0415 - imported when a drill is read, not at start-up (~2 MiB)

    try:
        return float(promql_parser.parse_duration(value).total_seconds())
    except ValueError as exc:
        raise DrillSpecError(path, f'"{value}" is not a duration like "30s": {exc}') from exc


def promql(value: Any, path: str) -> str:
    """A PromQL expression that parses and returns an instant vector or a scalar."""
    text = nonempty(value, path)
    import promql_parser  # noqa: PLC0415 - imported when a drill is read, not at start-up

    try:
        expr = promql_parser.parse(text)
    except ValueError as exc:
        raise DrillSpecError(path, f"is not valid PromQL: {exc}") from exc
    if isinstance(expr, promql_parser.MatrixSelector | promql_parser.SubqueryExpr):
        raise DrillSpecError(path, "returns a range vector: wrap it, e.g. in rate(...)")
    if isinstance(expr, promql_parser.StringLiteral):
        raise DrillSpecError(path, "returns a string: write a condition over series")
    return text

"""Prometheus HTTP API parameters and JSON: parsed and written the way Prometheus does.

Times are RFC 3339 or unix seconds (rounded to the millisecond, as ``parseTime``);
durations are Prometheus durations (``5m``, ``1h30m``) or float seconds. Values are
written as Go's ``strconv.FormatFloat(v, 'f', -1, 64)`` strings and timestamps as seconds
with millisecond precision, so clients parse our answers exactly as Prometheus's. A bad
parameter raises ``ParamError``, which the routes answer as ``bad_data`` (400).
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime

from collectors._core.errors import ParamError
from collectors.promql.labels import Labels
from collectors.promql.values import (
    MatrixResult,
    QueryResult,
    ScalarResult,
    StringResult,
    VectorResult,
    format_float,
)

MIN_TIME_MS = -(2**62) // 1000 * 1000
MAX_TIME_MS = (2**62) // 1000 * 1000
_DURATION = re.compile(
    r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$"
)
_DURATION_MS = (365 * 86_400_000, 7 * 86_400_000, 86_400_000, 3_600_000, 60_000, 1000, 1)
_FRACTION = re.compile(r"(\.\d{6})\d+")
_MIN_FORMATTED = "-292273086-05-16T16:47:06Z"
_MAX_FORMATTED = "292277025-08-18T07:12:54.999999999Z"


def _go_float(text: str) -> float | None:
    """``strconv.ParseFloat`` accepts what Python does, minus underscores and spaces."""
    if not text or "_" in text or text.strip() != text:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def parse_time(name: str, text: str) -> int:
    """A Prometheus time parameter in milliseconds."""
    seconds = _go_float(text)
    if seconds is not None:
        if math.isnan(seconds) or math.isinf(seconds) or abs(seconds) > 9.2e15:
            raise ParamError(name, f'cannot parse "{text}" to a valid timestamp')
        whole = math.trunc(seconds)
        return int(whole) * 1000 + round((seconds - whole) * 1000)
    if text == _MIN_FORMATTED:
        return MIN_TIME_MS
    if text == _MAX_FORMATTED:
        return MAX_TIME_MS
    try:
        parsed = datetime.fromisoformat(_FRACTION.sub(r"\1", text.replace("z", "Z")))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None or "T" not in text.upper():
        raise ParamError(name, f'cannot parse "{text}" to a valid timestamp')
    return round(parsed.timestamp() * 1000)


def parse_duration_ms(name: str, text: str) -> int:
    """A Prometheus duration parameter in milliseconds (float seconds or ``1h30m``)."""
    seconds = _go_float(text)
    if seconds is not None:
        if math.isnan(seconds) or abs(seconds * 1e9) > 2**63 - 1:
            raise ParamError(name, f'cannot parse "{text}" to a valid duration. It overflows int64')
        return int(seconds * 1000)
    match = _DURATION.match(text)
    if text in ("", "0") or match is None or not any(match.groups()):
        if text == "0":
            return 0
        raise ParamError(name, f'cannot parse "{text}" to a valid duration')
    return sum(int(g) * unit for g, unit in zip(match.groups(), _DURATION_MS, strict=True) if g)


def parse_limit(text: str | None) -> int | None:
    if text is None or text == "":
        return None
    try:
        limit = int(text)
    except ValueError:
        raise ParamError("limit", f'cannot parse "{text}" to a valid limit') from None
    if limit < 0:
        raise ParamError("limit", "limit must be non-negative")
    return limit or None


def format_ts(ms: int) -> str:
    """Prometheus's ``MarshalTimestamp``: seconds, then ``.`` and three digits if needed."""
    sign = "-" if ms < 0 else ""
    ms = abs(ms)
    whole, fraction = divmod(ms, 1000)
    if fraction:
        return f"{sign}{whole}.{fraction:03d}"
    return f"{sign}{whole}"


def _metric(labels: Labels) -> str:
    return json.dumps(dict(labels), separators=(",", ":"))


def result_json(result: QueryResult) -> str:
    """The ``data`` object of a query answer."""
    if isinstance(result, ScalarResult):
        body = f'[{format_ts(result.timestamp_ms)},"{format_float(result.value)}"]'
        return f'{{"resultType":"scalar","result":{body}}}'
    if isinstance(result, StringResult):
        body = f"[{format_ts(result.timestamp_ms)},{json.dumps(result.value)}]"
        return f'{{"resultType":"string","result":{body}}}'
    if isinstance(result, VectorResult):
        ts = format_ts(result.timestamp_ms)
        items = [
            f'{{"metric":{_metric(labels)},"value":[{ts},"{format_float(v)}"]}}'
            for labels, v in result.samples
        ]
        return '{"resultType":"vector","result":[' + ",".join(items) + "]}"
    assert isinstance(result, MatrixResult)
    items = []
    for s in result.series:
        points = ",".join(
            f'[{format_ts(t)},"{format_float(v)}"]'
            for t, v in zip(s.timestamps_ms, s.values, strict=True)
        )
        items.append(f'{{"metric":{_metric(s.labels)},"values":[{points}]}}')
    return '{"resultType":"matrix","result":[' + ",".join(items) + "]}"


def envelope_ok(data_json: str, warnings: tuple[str, ...] | list[str] = ()) -> str:
    body = '{"status":"success","data":' + data_json
    if warnings:
        body += ',"warnings":' + json.dumps(list(warnings))
    return body + "}"


def envelope_error(error_type: str, message: str) -> str:
    return json.dumps(
        {"status": "error", "errorType": error_type, "error": message}, separators=(",", ":")
    )

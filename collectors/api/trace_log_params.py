"""Parsing the query parameters of the trace and log APIs. Pure; every failure is a
``ParamError`` naming the parameter, which the routes answer with 400 (never 500).

Formats follow Tempo: durations are Go durations (``1.5s``, ``100ms``), search ``start`` /
``end`` are unix seconds, ``tags`` is logfmt (``http.status_code=500 service.name="a b"``).
Log times accept unix seconds (fractions allowed) or RFC 3339.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime

from collectors._core.errors import ParamError
from collectors._core.model import TraceId, severity_from_name

NS_PER_S = 1_000_000_000
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": NS_PER_S,
    "m": 60 * NS_PER_S,
    "h": 3600 * NS_PER_S,
}
_LOGFMT_PAIR = re.compile(r'\s*([^\s="]+)=("(?:[^"\\]|\\.)*"|[^\s"]*)\s*')
_TRUE = {"1", "true", "yes"}
_FALSE = {"", "0", "false", "no"}
_MAX_TIME_S = 1 << 33  # year 2242: beyond this a "time" is a unit mistake


def trace_id(parameter: str, text: str) -> TraceId:
    """Hex trace id of 1 to 32 digits, left-padded to 32 as Tempo does; not all zeros."""
    value = text.strip().lower()
    if not 0 < len(value) <= 32 or not re.fullmatch(r"[0-9a-f]+", value):
        raise ParamError(parameter, f"{text!r} is not a hex trace id of up to 32 digits")
    if int(value, 16) == 0:
        raise ParamError(parameter, "the all-zero trace id is invalid")
    return TraceId(value.rjust(32, "0"))


def duration_ns(parameter: str, text: str) -> int:
    """A Go duration (``300ms``, ``1h2m``, ``1.5s``) in nanoseconds."""
    value = text.strip()
    pos = 0
    total = 0.0
    while pos < len(value):
        match = _DURATION_PART.match(value, pos)
        if match is None:
            break
        total += float(match.group(1)) * _UNIT_NS[match.group(2)]
        pos = match.end()
    if not value or pos != len(value):
        raise ParamError(parameter, f"{text!r} is not a duration such as 100ms, 1.5s or 2m")
    return int(total)


def integer(parameter: str, text: str | None, *, default: int, minimum: int, maximum: int) -> int:
    """An integer in [minimum, maximum]; ``default`` when absent or empty."""
    if text is None or text.strip() == "":
        return default
    try:
        value = int(text.strip())
    except ValueError:
        raise ParamError(parameter, f"{text!r} is not an integer") from None
    if not minimum <= value <= maximum:
        raise ParamError(parameter, f"{value} is outside [{minimum}, {maximum}]")
    return value


def boolean(parameter: str, text: str | None) -> bool:
    value = (text or "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ParamError(parameter, f"{text!r} is not true or false")


def unix_seconds_ns(parameter: str, text: str) -> int:
    """Unix seconds (Tempo's search ``start`` / ``end``) in nanoseconds."""
    try:
        value = float(text.strip())
    except ValueError:
        raise ParamError(parameter, f"{text!r} is not unix seconds") from None
    if not math.isfinite(value) or not 0 <= value < _MAX_TIME_S:
        raise ParamError(parameter, f"{text!r} is not a unix time in seconds")
    return int(value * NS_PER_S)


def time_ns(parameter: str, text: str) -> int:
    """Unix seconds or an RFC 3339 time, in nanoseconds."""
    try:
        return unix_seconds_ns(parameter, text)
    except ParamError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ParamError(parameter, f"{text!r} is neither unix seconds nor RFC 3339") from None
    if moment.tzinfo is None:
        raise ParamError(parameter, f"{text!r} has no time zone (add Z or +00:00)")
    return int(moment.timestamp()) * NS_PER_S + moment.microsecond * 1_000


def logfmt_tags(parameter: str, text: str) -> dict[str, str]:
    """``key=value key2="quoted value"`` pairs."""
    out: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _LOGFMT_PAIR.match(text, pos)
        if match is None:
            raise ParamError(parameter, f"cannot read key=value at {text[pos : pos + 20]!r}")
        key, value = match.group(1), match.group(2)
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        out[key] = value
        pos = match.end()
    return out


def severity(parameter: str, text: str) -> int:
    """A severity name (``warn``, ``error``... any of :data:`collectors._core.model.SEVERITY_NAMES`)
    or an OTLP SeverityNumber 0..24."""
    value = text.strip().lower()
    named = severity_from_name(value)
    if named is not None:
        return int(named)
    if value.isdigit() and int(value) <= 24:
        return int(value)
    raise ParamError(parameter, f"{text!r} is not a severity (trace..fatal or 0..24)")


def time_range(
    params: Mapping[str, str], *, now_ns: int, default_window_s: int, unix_only: bool
) -> tuple[int, int]:
    """``start`` / ``end`` with defaults: end = now, start = end - default window."""
    parse = unix_seconds_ns if unix_only else time_ns
    end = parse("end", params["end"]) if params.get("end") else now_ns
    start = (
        parse("start", params["start"])
        if params.get("start")
        else end - default_window_s * NS_PER_S
    )
    if start > end:
        raise ParamError("start", "start is after end")
    if unix_only and params.get("end"):
        end += NS_PER_S - 1  # whole-second end bound includes that second
    return start, end

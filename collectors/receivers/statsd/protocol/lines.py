"""StatsD / DogStatsD lines -> typed values (pure: text in, frozen records out, no I/O).

The Etsy rules are the reference daemon's (npm ``statsd`` 0.9, ``stats.js`` and
``lib/helpers.js``), reproduced exactly because meshfed is compared with it value by value:
a line is ``key:chunk[:chunk...]``, every ``:``-chunk is ``value|type[|@rate]`` and is
checked on its own (one bad chunk = one bad line, the others still count); numbers follow
JavaScript's ``Number()``; the key is sanitized like ``sanitizeKeyName``; unknown types
with a numeric value are counters. DogStatsD extensions only reinterpret lines the
reference rejects (at least partly) — except where noted in docs/receivers/statsd.md:

- ``|#tag:v,tag2`` tags end at the next ``|`` and become labels (the reference glues them
  into the key); ``|c:<container>`` and ``|T<unix seconds>`` after the type are recognised;
- ``name:1:2:3|d`` (v1.1 value packing) is three values of one type;
- ``h`` and ``d`` aggregate like timers (the reference treats them as counters);
- a sample rate that is not a positive number (``@0``, ``@ 1``) is a bad line (the reference
  divides by zero or throws).

Events (``_e{..}``) and service checks (``_sc|..``) are parsed by
:mod:`collectors.receivers.statsd.protocol.events`. Nothing here raises for bad input: bad
chunks come back as :class:`BadValue`, so a datagram's other lines still count.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass

from collectors._core.errors import PermanentError
from collectors.receivers.statsd.protocol.events import (
    DogEvent,
    ServiceCheck,
    parse_event,
    parse_service_check,
    parse_tags,
)

Tags = tuple[tuple[str, str], ...]
"""DogStatsD tags as sorted (label name, value) pairs."""


class MetricKind(enum.Enum):
    COUNTER = "c"
    GAUGE = "g"
    TIMER = "ms"
    SET = "s"


@dataclass(frozen=True, slots=True)
class MetricValue:
    """One value of one metric line (a line may hold several)."""

    kind: MetricKind
    name: str
    """The key after the reference's sanitizing (tags are not part of it)."""
    tags: Tags
    value: float
    """Counters: already divided by the sample rate; sets: unused (see ``member``)."""
    rate: float = 1.0
    delta: bool = False
    """Gauges: the value had a leading ``+``/``-`` (a delta when the gauge exists)."""
    member: str = ""
    """Sets: the member as sent (``"0"`` for an empty value, like the reference)."""
    timestamp_s: int | None = None
    """DogStatsD ``|T``: counters and gauges with a timestamp bypass the flush time."""
    container_id: str = ""


@dataclass(frozen=True, slots=True)
class BadValue:
    """A chunk the reference daemon counts in ``bad_lines_seen``."""

    reason: str


Item = MetricValue | BadValue | DogEvent | ServiceCheck

# JavaScript's String.prototype.trim / \s whitespace (not Python's str.isspace set).
_JS_WS = (
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_RADIX = re.compile(r"0(?:[xX][0-9a-fA-F]+|[oO][0-7]+|[bB][01]+)")
_RATE = re.compile(r"@([0-9.]+)")
_WS_RUN = re.compile(f"[{_JS_WS}]+")
_KEY_JUNK = re.compile(r"[^a-zA-Z_\-0-9.;=]")
_TIMESTAMP = re.compile(r"T[0-9]{1,12}")
_TIMER_TYPES = frozenset({"ms", "h", "d"})


def js_number(text: str) -> float:
    """JavaScript ``Number(text)`` for strings: NaN when it is not a number."""
    s = text.strip(_JS_WS)
    if not s:
        return 0.0
    if _DECIMAL.fullmatch(s):
        return float(s)
    if s in ("Infinity", "+Infinity"):
        return math.inf
    if s == "-Infinity":
        return -math.inf
    if _RADIX.fullmatch(s):
        try:
            return float(int(s, 0))
        except OverflowError:
            return math.inf
    return math.nan


def is_number(text: str) -> bool:
    """The reference's ``isNumber``: ``Boolean(str && !isNaN(str))``."""
    return bool(text) and not math.isnan(js_number(text))


def sanitize_key(key: str) -> str:
    """The reference's ``sanitizeKeyName`` (whitespace -> ``_``, ``/`` -> ``-``, rest dropped)."""
    return _KEY_JUNK.sub("", _WS_RUN.sub("_", key).replace("/", "-"))


def _sample_rate(field: str) -> float | None:
    """The rate of a valid ``@rate`` field, None if the reference would reject it."""
    if len(field) < 2 or field[0] != "@":
        return None
    number = field[1:]
    if not is_number(number) or number[0] == "-":
        return None
    match = _RATE.match(field)  # the reference reads only the leading [0-9.]+ run
    if match is None:
        return None
    rate = js_number(match.group(1))
    return rate if rate > 0 else None


def _split_extensions(rest: str) -> tuple[str, Tags, str, int | None]:
    """Pull DogStatsD tags, container id and timestamp out of everything after the key."""
    tags: Tags = ()
    cut = rest.find("|#")
    if cut >= 0:
        tag_text, _, tail = rest[cut + 2 :].partition("|")
        tags = parse_tags(tag_text)
        rest = rest[:cut] + ("|" + tail if tail else "")
    if "|c:" not in rest and "|T" not in rest and "|#" not in rest:
        return rest, tags, "", None
    segments = rest.split("|")
    if len(segments) < 3 or ":" in segments[1]:
        return rest, tags, "", None  # Etsy multi-value "1|c:2|c:5|ms": no DogStatsD fields
    kept = segments[:2]
    container, timestamp = "", None
    for segment in segments[2:]:
        if segment.startswith("c:"):
            container = segment[2:]
        elif _TIMESTAMP.fullmatch(segment):
            timestamp = int(segment[1:])
        elif segment.startswith("#"):
            tags = tuple(sorted({**dict(tags), **dict(parse_tags(segment[1:]))}.items()))
        else:
            kept.append(segment)
    return "|".join(kept), tags, container, timestamp


def _chunk(
    chunk: str, name: str, tags: Tags, container: str, timestamp: int | None
) -> MetricValue | BadValue:
    """One ``value|type[|@rate]`` chunk, validated like ``is_valid_packet``."""
    fields = chunk.split("|")
    if len(fields) < 2:
        return BadValue("missing type")
    raw, kind_text = fields[0], fields[1]
    rate = 1.0
    if len(fields) > 2:
        parsed_rate = _sample_rate(fields[2])
        if parsed_rate is None:
            return BadValue("bad sample rate")
        rate = parsed_rate
    if kind_text == "s":
        return MetricValue(
            MetricKind.SET, name, tags, 0.0, rate, member=raw or "0", container_id=container
        )
    if not is_number(raw):
        return BadValue("value is not a number")
    value = js_number(raw)
    if kind_text == "ms" and value < 0:
        return BadValue("negative timer value")
    kind = kind_text.strip(_JS_WS)
    if kind in _TIMER_TYPES:
        return MetricValue(MetricKind.TIMER, name, tags, value, rate, container_id=container)
    if kind == "g":
        return MetricValue(
            MetricKind.GAUGE,
            name,
            tags,
            value,
            rate,
            delta=raw[0] in "+-",
            timestamp_s=timestamp,
            container_id=container,
        )
    if kind == "s":  # " s": validated as a number by the reference, then a set member
        return MetricValue(
            MetricKind.SET, name, tags, 0.0, rate, member=raw, container_id=container
        )
    return MetricValue(
        MetricKind.COUNTER,
        name,
        tags,
        value * (1 / rate),
        rate,
        timestamp_s=timestamp,
        container_id=container,
    )


def parse_line(line: str) -> tuple[Item, ...]:
    """One non-empty line -> its values, bad chunks, event or service check. Never raises."""
    try:
        if line.startswith("_e{"):
            return (parse_event(line),)
        if line.startswith("_sc|"):
            return (parse_service_check(line),)
    except PermanentError as e:
        return (BadValue(str(e)),)
    colon = line.find(":")
    tag_cut = line.find("|#")
    if colon < 0 or 0 <= tag_cut < colon:
        # the reference splits "|#" off first; a key without ':' means value "1" and no type
        return (BadValue("missing ':'"),)
    rest, tags, container, timestamp = _split_extensions(line[colon + 1 :])
    key = sanitize_key(line[:colon])
    chunks = rest.split(":")
    if len(chunks) > 1 and all("|" not in c for c in chunks[:-1]):
        # DogStatsD v1.1 packing "k:1:2:3|d": the last chunk carries the type and options
        value_text, bar, options = chunks[-1].partition("|")
        if bar:
            return tuple(
                _chunk(f"{v}|{options}", key, tags, container, timestamp)
                for v in (*chunks[:-1], value_text)
            )
    return tuple(_chunk(c, key, tags, container, timestamp) for c in chunks)


def split_lines(datagram: bytes) -> list[str]:
    """A datagram (or TCP chunk) -> its non-empty lines, decoded like Node's ``toString()``."""
    return [line for line in datagram.decode("utf-8", "replace").split("\n") if line]

"""A whole batch of Fluentd events → log columns in C-level passes, when the batch is uniform.

Pure. Why: the Forward receiver's cost was a Python loop iteration per event (type checks,
dict lookups, appends: ~0.8 µs, as much as decoding the event). Most batches are uniform —
every event an ``[int or EventTime, map]`` pair whose body sits under the same key, whose
severity (if any) under the same key, without trace or span ids, with flat fields — and for
such a batch each rule of :mod:`collectors.receivers.forward.protocol.record` can be checked
and applied per *column* with ``map``/``set``/``min``/``max`` over lists, which run in C.

:func:`uniform_columns` decides before it changes anything: it returns ``None`` (and leaves
the maps as they were) as soon as one event would need a rule the per-event path applies
(nested values, a body under different keys, a bad time, ids to lift...), and the caller
then converts the batch event by event. Both paths give the same records; a property test
checks it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from itertools import chain, repeat
from operator import add, attrgetter
from typing import Any, cast

from collectors._core.log_batch import LogColumns
from collectors._core.model import SEVERITY_NAMES, AttributeValue, Severity, severity_from_name
from collectors.receivers.forward.protocol.message import (
    EVENT_TIME,
    EXT,
    MAX_SECONDS,
    NS_PER_S,
)

BODY_KEYS = ("message", "log", "msg")
SEVERITY_KEYS = ("level", "severity")
TRACE_ID_KEYS = ("trace_id", "traceId")
SPAN_ID_KEYS = ("span_id", "spanId")
ID_KEYS = frozenset(TRACE_ID_KEYS + SPAN_ID_KEYS)
LIFTED_KEYS = ID_KEYS.union(SEVERITY_KEYS)
FLAT_TYPES = frozenset({str, float, bool, bytes, type(None)})
"""Attribute values kept as they are (and int64 integers)."""
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# The usual spellings first (no str.lower() per event), any case through the fallback.
SEVERITY_BY_TEXT = {
    text: number
    for name, number in SEVERITY_NAMES.items()
    for text in (name, name.upper(), name.capitalize())
}

_MAX_KEYS = 32
"""More distinct keys in a batch than this: per event (a column per key would cost more)."""
_NONE = type(None)
_STR_ONLY = frozenset({str})
_unpack_event_time = EVENT_TIME.unpack
_code = attrgetter("start")  # of an EXT value: slice(code, data)
_data = attrgetter("stop")
_by_text: Callable[[str], Severity | None] = SEVERITY_BY_TEXT.get


def severity(text: str) -> Severity:
    """The severity named by ``text`` (any case), ``UNSPECIFIED`` when unknown."""
    return SEVERITY_BY_TEXT.get(text) or severity_from_name(text) or Severity.UNSPECIFIED


def _column(
    records: list[dict[Any, Any]], keys: tuple[str, ...], present: set[Any]
) -> tuple[str, list[Any]] | None:
    """The first of ``keys`` under which every record holds a string, with those strings;
    ``("", [])`` when no record holds a string under any of them; ``None`` when mixed.
    ``present`` is every key of every record (a key none has is skipped unread)."""
    for key in keys:
        if key not in present:
            continue
        values = list(map(dict.get, records, repeat(key)))
        kinds = set(map(type, values))
        if kinds == _STR_ONLY:
            return key, values
        if kinds != {_NONE}:  # some have a non-string (or only some a string): per event
            return None
    return "", []


def _times_ns(times: list[Any]) -> list[int] | None:
    """Event times in unix ns when all are plain (int seconds or EventTime, never "now")."""
    kinds = set(map(type, times))
    if kinds == {int}:
        if times.count(times[0]) == len(times) and 0 < times[0] < MAX_SECONDS:
            return [times[0] * NS_PER_S] * len(times)  # one second: common in a batch
        if min(times) > 0 and max(times) < MAX_SECONDS:
            return list(map(NS_PER_S.__mul__, times))
        return None
    if kinds == {EXT} and set(map(_code, times)) == {0}:
        data = list(map(_data, times))
        if set(map(len, data)) != {EVENT_TIME.size}:
            return None
        seconds, nanos = zip(*map(_unpack_event_time, data), strict=True)
        if min(seconds) > 0 and max(nanos) < NS_PER_S:
            return list(map(add, map(NS_PER_S.__mul__, seconds), nanos))
    return None


def _flat(records: list[dict[Any, Any]], keys: set[Any]) -> bool:
    """Whether every value (of these ``keys``) is kept as it is (int64 for integers).

    A column per key: integers of one key can be compared in one ``min``/``max``.
    """
    for key in keys:
        values: list[Any] = list(map(dict.get, records, repeat(key)))
        found = set(map(type, values))
        if found <= FLAT_TYPES:
            continue
        if found != {int}:  # mixed with ints, or maps/arrays/ext values: per event
            return False
        if min(values) < INT64_MIN or max(values) > INT64_MAX:
            return False
    return True


def uniform_columns(tag: str, entries: list[Any], observed_ns: int) -> LogColumns | None:
    """The columns of ``entries`` when the batch is uniform (see the module), else ``None``
    with every map untouched. The maps are taken over (they become the attributes)."""
    n = len(entries)
    if not n or set(map(type, entries)) != {list} or set(map(len, entries)) != {2}:
        return None
    times = list(map(list.__getitem__, entries, repeat(0)))
    records: list[dict[Any, Any]] = list(map(list.__getitem__, entries, repeat(1)))
    if set(map(type, records)) != {dict}:
        return None
    times_ns = _times_ns(times)
    if times_ns is None:
        return None
    present = set(chain.from_iterable(records))  # every key of the batch, usually a few
    if not ID_KEYS.isdisjoint(present) or not all(type(key) is str for key in present):
        return None
    body = _column(records, BODY_KEYS, present)
    if body is None or not body[0]:  # no string body: the body is each record's JSON
        return None
    level = _column(records, SEVERITY_KEYS, present)
    if level is None or len(present) > _MAX_KEYS:
        return None
    lifted = {body[0], level[0]} if level[0] else {body[0]}  # strings: flat already
    if not _flat(records, present - lifted):
        return None
    # Decided: lift the fields (C-level loops over the maps).
    deque(map(dict.__delitem__, records, repeat(body[0])), maxlen=0)
    numbers: list[Severity | int]
    if level[0]:
        deque(map(dict.__delitem__, records, repeat(level[0])), maxlen=0)
        texts = level[1]
        found = list(map(_by_text, texts))
        if None in found:  # spellings outside the table: by name, any case
            numbers = list(map(severity, texts))
        else:
            numbers = cast("list[Severity | int]", found)
    else:
        texts = [""] * n
        numbers = [Severity.UNSPECIFIED] * n
    attributes: list[Mapping[str, AttributeValue]] = records  # type: ignore[assignment]
    return LogColumns(
        tag, {}, times_ns, body[1], numbers, texts, attributes, [observed_ns] * n, None, None
    )

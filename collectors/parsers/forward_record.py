"""One Fluentd event ``[time, record]`` → :class:`collectors.model.LogRecord`.

Pure. The mapping, kept simple and documented in docs/receivers/forward.md:

- ``body``: the first of ``message``, ``log``, ``msg`` that is a string (that field is then
  not repeated as an attribute); otherwise the compact JSON of the whole record.
- ``severity``: the first of ``level``, ``severity`` that is a string, mapped by name
  (``trace``, ``debug``, ``info``/``notice``, ``warn``/``warning``, ``error``/``err``,
  ``fatal``/``critical``/``crit``/``alert``/``emerg``/``panic``; case-insensitive) to
  :class:`collectors.model.Severity`; the text is kept as ``severity_text``.
- ``trace_id`` / ``span_id``: lifted from ``trace_id``/``traceId`` and ``span_id``/``spanId``
  when they hold 32 / 16 hex digits (or 16 / 8 raw bytes); otherwise they stay attributes.
- ``attributes``: every other field; nested maps become dotted keys (``kubernetes.pod_name``),
  maps inside arrays become JSON strings, integers outside int64 become strings, ext values
  their raw bytes. Nesting deeper than ``max_depth`` makes the event invalid.

Speed (this is the Forward receiver's hot loop): the common event, a string body and flat
fields, is converted without copying its map: the decoded map, minus the lifted fields,
becomes the record's attributes, so the caller hands over freshly decoded entries and does not
reuse them. Lifted keys are only looked for when the map has one (one C-level set test), and
every other event takes the general path, which copies and flattens.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

import msgpack

from collectors.errors import PermanentError
from collectors.model import AttributeValue, LogRecord, Severity, SpanId, TraceId
from collectors.parsers.forward import MAX_SECONDS, NS_PER_S, EventTime, event_time_ns

BODY_KEYS = ("message", "log", "msg")
SEVERITY_KEYS = ("level", "severity")
TRACE_ID_KEYS = ("trace_id", "traceId")
SPAN_ID_KEYS = ("span_id", "spanId")
_LIFTED_KEYS = frozenset(SEVERITY_KEYS + TRACE_ID_KEYS + SPAN_ID_KEYS)
_FLAT_TYPES = frozenset({str, float, bool, bytes, type(None)})  # and int64 ints

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_HEX32 = re.compile(r"[0-9a-fA-F]{32}")
_HEX16 = re.compile(r"[0-9a-fA-F]{16}")
_SEVERITY_NAMES = {
    "trace": Severity.TRACE,
    "debug": Severity.DEBUG,
    "info": Severity.INFO,
    "information": Severity.INFO,
    "notice": Severity.INFO,
    "warn": Severity.WARN,
    "warning": Severity.WARN,
    "error": Severity.ERROR,
    "err": Severity.ERROR,
    "fatal": Severity.FATAL,
    "critical": Severity.FATAL,
    "crit": Severity.FATAL,
    "alert": Severity.FATAL,
    "emerg": Severity.FATAL,
    "panic": Severity.FATAL,
}
# The usual spellings first (no str.lower() per event), any case through the fallback.
_SEVERITY_BY_TEXT = {
    text: number
    for name, number in _SEVERITY_NAMES.items()
    for text in (name, name.upper(), name.capitalize())
}


def to_log_record(
    tag: str, entry: Any, *, now_ns: int, max_depth: int, observed_ns: int = 0
) -> LogRecord:
    """The log record of one ``[time, record]`` entry; ``PermanentError`` if it is invalid.

    The entry's map is taken over (it may become the record's attributes).
    """
    return _convert(tag, entry, now_ns, observed_ns, max_depth, {})


def to_log_records(
    tag: str, entries: Iterable[Any], *, now_ns: int, max_depth: int, observed_ns: int = 0
) -> tuple[list[LogRecord], int]:
    """The records of ``entries`` and the number of invalid entries skipped.

    The entries' maps are taken over; the records share one (empty) resource map, which the
    store encodes once per stream entry instead of once per record.
    """
    resource: dict[str, AttributeValue] = {}
    records: list[LogRecord] = []
    append = records.append
    invalid = 0
    for entry in entries:
        try:
            append(_convert(tag, entry, now_ns, observed_ns, max_depth, resource))
        except PermanentError:
            invalid += 1
    return records, invalid


def _convert(
    tag: str,
    entry: Any,
    now_ns: int,
    observed_ns: int,
    max_depth: int,
    resource: dict[str, AttributeValue],
) -> LogRecord:
    if not isinstance(entry, list | tuple) or len(entry) != 2:
        raise PermanentError("a Forward entry must be [time, record]")
    time_value, record = entry
    if not isinstance(record, dict):
        raise PermanentError("a Forward record must be a map")
    if type(time_value) is int and 0 < time_value < MAX_SECONDS:
        time_ns = time_value * NS_PER_S
    else:
        time_ns = event_time_ns(time_value, now_ns)
    for key in BODY_KEYS:
        body = record.get(key)
        if type(body) is str:
            break
    else:  # the body is the JSON of the whole record, lifted fields included
        return _general(tag, time_ns, record, observed_ns, max_depth, resource)
    del record[key]
    severity: Severity = Severity.UNSPECIFIED
    severity_text = ""
    trace_id = span_id = None
    if not _LIFTED_KEYS.isdisjoint(record):
        severity, severity_text = _lift_severity(record)
        trace_id = _lift_id(record, TRACE_ID_KEYS, _HEX32, 16)
        span_id = _lift_id(record, SPAN_ID_KEYS, _HEX16, 8)
    attributes: dict[str, AttributeValue] = record
    if not _is_flat(record):
        attributes = {}
        _flatten(record, "", attributes, max_depth)
    return LogRecord(
        time_unix_nano=time_ns,
        body=body,
        tag=tag,
        severity_number=severity,
        severity_text=severity_text,
        attributes=attributes,
        resource=resource,
        trace_id=TraceId(trace_id) if trace_id else None,
        span_id=SpanId(span_id) if span_id else None,
        observed_time_unix_nano=observed_ns,
    )


def _is_flat(record: dict[Any, Any]) -> bool:
    """Whether every key is a string and every value a scalar kept as it is."""
    for key, value in record.items():
        kind = type(value)
        if type(key) is not str or (
            kind not in _FLAT_TYPES and (kind is not int or not _INT64_MIN <= value <= _INT64_MAX)
        ):
            return False
    return True


def _lift_severity(fields: dict[str, Any]) -> tuple[Severity, str]:
    for key in SEVERITY_KEYS:
        value = fields.get(key)
        if isinstance(value, str):
            del fields[key]
            number = _SEVERITY_BY_TEXT.get(value)
            if number is None:
                number = _SEVERITY_NAMES.get(value.lower(), Severity.UNSPECIFIED)
            return number, value
    return Severity.UNSPECIFIED, ""


def _general(
    tag: str,
    time_ns: int,
    record: dict[str, Any],
    observed_ns: int,
    max_depth: int,
    resource: dict[str, AttributeValue],
) -> LogRecord:
    """An event without a string body: the body is the record's JSON (lifted fields included),
    the attributes a flattened copy without the lifted fields."""
    fields = dict(record)
    severity, severity_text = _lift_severity(fields)
    trace_id = _lift_id(fields, TRACE_ID_KEYS, _HEX32, 16)
    span_id = _lift_id(fields, SPAN_ID_KEYS, _HEX16, 8)
    attributes: dict[str, AttributeValue] = {}
    _flatten(fields, "", attributes, max_depth)  # first: it bounds the depth json.dumps meets
    body = json.dumps(record, separators=(",", ":"), ensure_ascii=False, default=_json_default)
    return LogRecord(
        time_unix_nano=time_ns,
        body=body,
        tag=tag,
        severity_number=severity,
        severity_text=severity_text,
        attributes=attributes,
        resource=resource,
        trace_id=TraceId(trace_id) if trace_id else None,
        span_id=SpanId(span_id) if span_id else None,
        observed_time_unix_nano=observed_ns,
    )


def _lift_id(
    fields: dict[str, Any], keys: tuple[str, ...], pattern: re.Pattern[str], size: int
) -> str | None:
    for key in keys:
        value = fields.get(key)
        hex_id: str | None = None
        if isinstance(value, str) and pattern.fullmatch(value):
            hex_id = value.lower()
        elif type(value) is bytes and len(value) == size:
            hex_id = value.hex()
        if hex_id is not None and hex_id.strip("0"):
            del fields[key]
            return hex_id
    return None


def _flatten(
    fields: Mapping[str, Any], prefix: str, out: dict[str, AttributeValue], depth: int
) -> None:
    if depth <= 0:
        raise PermanentError("record nesting exceeds the depth limit")
    for key, value in fields.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            _flatten(value, f"{name}.", out, depth - 1)
        else:
            out[name] = _scalar(value, depth - 1)


def _scalar(value: Any, depth: int) -> AttributeValue:
    if isinstance(value, EventTime):  # an ext 0 value decoded by forward.ext_hook
        return bytes(value)
    if value is None or isinstance(value, str | bool | float | bytes):
        return value
    if isinstance(value, int):
        return value if _INT64_MIN <= value <= _INT64_MAX else str(value)
    if isinstance(value, list):
        if depth <= 0:
            raise PermanentError("record nesting exceeds the depth limit")
        return [_array_item(item, depth - 1) for item in value]
    if isinstance(value, msgpack.ExtType):
        return bytes(value.data)
    if isinstance(value, msgpack.Timestamp):
        return int(value.to_unix_nano())
    return str(value)


def _array_item(value: Any, depth: int) -> AttributeValue:
    if isinstance(value, dict):
        _check_depth(value, depth)
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_default)
    return _scalar(value, depth)


def _check_depth(value: Any, depth: int) -> None:
    stack = [(value, depth)]
    while stack:
        item, left = stack.pop()
        if isinstance(item, dict | list):
            if left <= 0:
                raise PermanentError("record nesting exceeds the depth limit")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, left - 1) for child in children)


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, msgpack.ExtType):
        return bytes(value.data).decode("utf-8", "replace")
    if isinstance(value, msgpack.Timestamp):
        return int(value.to_unix_nano())
    return str(value)

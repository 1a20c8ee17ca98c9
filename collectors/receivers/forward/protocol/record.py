"""One Fluentd event ``[time, record]`` → :class:`collectors._core.model.LogRecord`.

Pure. The mapping, kept simple and documented in docs/receivers/forward.md:

- ``body``: the first of ``message``, ``log``, ``msg`` that is a string (that field is then
  not repeated as an attribute); otherwise the compact JSON of the whole record.
- ``severity``: the first of ``level``, ``severity`` that is a string, mapped by name
  (``trace``, ``debug``, ``info``/``notice``, ``warn``/``warning``, ``error``/``err``,
  ``fatal``/``critical``/``crit``/``alert``/``emerg``/``panic``; case-insensitive) to
  :class:`collectors._core.model.Severity`; the text is kept as ``severity_text``.
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

import dataclasses
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import msgpack

from collectors._core.errors import PermanentError
from collectors._core.model import (
    SEVERITY_NAMES,
    AttributeValue,
    LogRecord,
    Severity,
    SpanId,
    TraceId,
    severity_from_name,
)
from collectors.receivers.forward.protocol.message import (
    EVENT_TIME,
    MAX_SECONDS,
    NS_PER_S,
    EventTime,
    event_time_ns,
)

BODY_KEYS = ("message", "log", "msg")
SEVERITY_KEYS = ("level", "severity")
TRACE_ID_KEYS = ("trace_id", "traceId")
SPAN_ID_KEYS = ("span_id", "spanId")
_ID_KEYS = frozenset(TRACE_ID_KEYS + SPAN_ID_KEYS)
_LIFTED_KEYS = _ID_KEYS.union(SEVERITY_KEYS)
_FLAT_TYPES = frozenset({str, float, bool, bytes, type(None)})  # and int64 ints

_unpack_event_time = EVENT_TIME.unpack
_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_HEX32 = re.compile(r"[0-9a-fA-F]{32}")
_HEX16 = re.compile(r"[0-9a-fA-F]{16}")
# The usual spellings first (no str.lower() per event), any case through the fallback.
_SEVERITY_BY_TEXT = {
    text: number
    for name, number in SEVERITY_NAMES.items()
    for text in (name, name.upper(), name.capitalize())
}


def to_log_record(
    tag: str, entry: Any, *, now_ns: int, max_depth: int, observed_ns: int = 0
) -> LogRecord:
    """The log record of one ``[time, record]`` entry; ``PermanentError`` if it is invalid.

    The entry's map is taken over (it may become the record's attributes).
    """
    convert = _converter(tag, now_ns=now_ns, observed_ns=observed_ns, max_depth=max_depth)
    return convert(entry)


def to_log_records(
    tag: str, entries: Iterable[Any], *, now_ns: int, max_depth: int, observed_ns: int = 0
) -> tuple[list[LogRecord], int]:
    """The records of ``entries`` and the number of invalid entries skipped.

    The entries' maps are taken over; the records share one (empty) resource map, which the
    store encodes once per stream entry instead of once per record.
    """
    convert = _converter(tag, now_ns=now_ns, observed_ns=observed_ns, max_depth=max_depth)
    records: list[LogRecord] = []
    append = records.append
    invalid = 0
    for entry in entries:
        if type(entry) is not list and not isinstance(entry, list | tuple):
            invalid += 1  # not even an array: counted without raising (a zeros bomb is 16 M)
            continue
        try:
            append(convert(entry))
        except PermanentError:
            invalid += 1
    return records, invalid


def _converter(
    tag: str, *, now_ns: int, observed_ns: int, max_depth: int
) -> Callable[[Any], LogRecord]:
    """The entry → record function of one message (its constants bound once, not per event)."""
    resource: dict[str, AttributeValue] = {}

    def convert(entry: Any) -> LogRecord:
        if (type(entry) is not list and not isinstance(entry, list | tuple)) or len(entry) != 2:
            raise PermanentError("a Forward entry must be [time, record]")
        time_value, record = entry
        if type(record) is not dict and not isinstance(record, dict):
            raise PermanentError("a Forward record must be a map")
        kind = type(time_value)
        if kind is int and 0 < time_value < MAX_SECONDS:
            time_ns = time_value * NS_PER_S
        elif kind is EventTime:
            seconds, nanos = _unpack_event_time(time_value)
            if nanos < NS_PER_S and (seconds or nanos):
                time_ns = seconds * NS_PER_S + nanos
            else:  # "now" or the error
                time_ns = event_time_ns(time_value, now_ns)
        else:
            time_ns = event_time_ns(time_value, now_ns)
        for key in BODY_KEYS:
            body = record.get(key)
            if type(body) is str:
                break
        else:  # the body is the JSON of the whole record, lifted fields included
            return _general(
                record,
                time_ns,
                tag=tag,
                observed_ns=observed_ns,
                max_depth=max_depth,
                resource=resource,
            )
        del record[key]
        severity: Severity = Severity.UNSPECIFIED
        severity_text = ""
        trace_id = span_id = None
        if not _LIFTED_KEYS.isdisjoint(record):
            for key in SEVERITY_KEYS:
                value = record.get(key)
                if type(value) is str:
                    del record[key]
                    severity_text = value
                    severity = _SEVERITY_BY_TEXT.get(value) or _severity(value)
                    break
            if not _ID_KEYS.isdisjoint(record):
                trace_id = _lift_id(record, TRACE_ID_KEYS, _HEX32, 16)
                span_id = _lift_id(record, SPAN_ID_KEYS, _HEX16, 8)
        attributes: dict[str, AttributeValue] = record
        for key, value in record.items():  # flat (string keys, scalars kept as they are)?
            kind = type(value)
            if type(key) is not str or (
                kind not in _FLAT_TYPES
                and (kind is not int or not _INT64_MIN <= value <= _INT64_MAX)
            ):
                attributes = {}
                _flatten(record, "", attributes, max_depth)
                break
        return _new_record(
            time_ns,
            body,
            tag,
            severity,
            severity_text,
            attributes,
            resource,
            TraceId(trace_id) if trace_id else None,
            SpanId(span_id) if span_id else None,
            observed_ns,
        )

    return convert


_LOG_RECORD_FIELDS = (
    "time_unix_nano",
    "body",
    "tag",
    "severity_number",
    "severity_text",
    "attributes",
    "resource",
    "trace_id",
    "span_id",
    "observed_time_unix_nano",
)
if (
    tuple(f.name for f in dataclasses.fields(LogRecord)) != _LOG_RECORD_FIELDS
    or hasattr(LogRecord, "__post_init__")
    or not hasattr(LogRecord, "__slots__")
):  # fail at import, in every test: _new_record must learn the new shape
    raise RuntimeError("LogRecord changed: update forward_record._new_record")
_alloc = object.__new__
_Setter = Callable[[LogRecord, Any], None]
_SETTERS: tuple[_Setter, ...] = tuple(getattr(LogRecord, n).__set__ for n in _LOG_RECORD_FIELDS)
(
    _set_time,
    _set_body,
    _set_tag,
    _set_severity,
    _set_severity_text,
    _set_attributes,
    _set_resource,
    _set_trace_id,
    _set_span_id,
    _set_observed,
) = _SETTERS


def _new_record(  # noqa: PLR0917 -- one argument per LogRecord field
    time_unix_nano: int,
    body: str,
    tag: str,
    severity_number: Severity,
    severity_text: str,
    attributes: dict[str, AttributeValue],
    resource: dict[str, AttributeValue],
    trace_id: TraceId | None,
    span_id: SpanId | None,
    observed_time_unix_nano: int,
) -> LogRecord:
    """``LogRecord(...)``, the same frozen object, at half the cost (the hot loop's largest).

    Why: a frozen dataclass's ``__init__`` sets each of its 10 fields through
    ``object.__setattr__`` (~1.5 µs per record on the bench machine, as much as the rest of
    the conversion); writing the slots through their descriptors costs half. Valid only for a
    plain slotted dataclass without ``__post_init__``, which the check above enforces.
    """
    record = _alloc(LogRecord)
    _set_time(record, time_unix_nano)
    _set_body(record, body)
    _set_tag(record, tag)
    _set_severity(record, severity_number)
    _set_severity_text(record, severity_text)
    _set_attributes(record, attributes)
    _set_resource(record, resource)
    _set_trace_id(record, trace_id)
    _set_span_id(record, span_id)
    _set_observed(record, observed_time_unix_nano)
    return record


def _severity(text: str) -> Severity:
    return severity_from_name(text) or Severity.UNSPECIFIED


def _lift_severity(fields: dict[str, Any]) -> tuple[Severity, str]:
    for key in SEVERITY_KEYS:
        value = fields.get(key)
        if isinstance(value, str):
            del fields[key]
            return _severity(value), value
    return Severity.UNSPECIFIED, ""


def _general(
    record: dict[str, Any],
    time_ns: int,
    *,
    tag: str,
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
    if isinstance(value, EventTime):  # as json encodes an ExtType: a (code, data) tuple
        return [0, value.decode("utf-8", "replace")]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, msgpack.ExtType):
        return bytes(value.data).decode("utf-8", "replace")
    if isinstance(value, msgpack.Timestamp):
        return int(value.to_unix_nano())
    return str(value)

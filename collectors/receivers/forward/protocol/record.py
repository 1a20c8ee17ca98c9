"""Fluentd events ``[time, record]`` → log records (columns of a ``LogBatch`` part).

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

Speed (this is the Forward receiver's hot loop): a uniform batch is converted column by
column (:mod:`collectors.receivers.forward.protocol.columns`); the others event by event
here, straight into columns (no ``LogRecord`` object per event). The common event, a string
body and flat fields, is converted without copying its map: the decoded map, minus the
lifted fields, becomes the record's attributes, so the caller hands over freshly decoded
entries and does not reuse them. Lifted keys are only looked for when the map has one (one
C-level set test), and every other event takes the general path, which copies and flattens.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn

import msgpack

from collectors._core.errors import PermanentError
from collectors._core.log_batch import LogBatch, LogColumns
from collectors._core.model import AttributeValue, LogRecord, Severity, SpanId, TraceId
from collectors.receivers.forward.protocol.columns import (
    BODY_KEYS,
    FLAT_TYPES,
    ID_KEYS,
    INT64_MAX,
    INT64_MIN,
    LIFTED_KEYS,
    SEVERITY_KEYS,
    SPAN_ID_KEYS,
    TRACE_ID_KEYS,
    severity,
    uniform_columns,
)
from collectors.receivers.forward.protocol.message import (
    EVENT_TIME,
    EXT,
    MAX_SECONDS,
    NS_PER_S,
    event_time_ns,
)

__all__ = ["BODY_KEYS", "SEVERITY_KEYS", "to_log_columns", "to_log_record", "to_log_records"]

_unpack_event_time = EVENT_TIME.unpack
_HEX32 = re.compile(r"[0-9a-fA-F]{32}")
_HEX16 = re.compile(r"[0-9a-fA-F]{16}")


def to_log_record(
    tag: str, entry: Any, *, now_ns: int, max_depth: int, observed_ns: int = 0
) -> LogRecord:
    """The log record of one ``[time, record]`` entry; ``PermanentError`` if it is invalid.

    The entry's map is taken over (it may become the record's attributes).
    """
    columns, _ = to_log_columns(
        tag, (entry,), now_ns=now_ns, max_depth=max_depth, observed_ns=observed_ns, strict=True
    )
    return columns.record(0)


def to_log_records(
    tag: str, entries: Iterable[Any], *, now_ns: int, max_depth: int, observed_ns: int = 0
) -> tuple[list[LogRecord], int]:
    """The records of ``entries`` and the number of invalid entries skipped (see
    :func:`to_log_columns`; these records share one resource map)."""
    columns, invalid = to_log_columns(
        tag, entries, now_ns=now_ns, max_depth=max_depth, observed_ns=observed_ns
    )
    return list(LogBatch([columns])), invalid


def to_log_columns(  # noqa: PLR0915 -- the hot loop, inlined on purpose
    tag: str,
    entries: Iterable[Any],
    *,
    now_ns: int,
    max_depth: int,
    observed_ns: int = 0,
    strict: bool = False,
) -> tuple[LogColumns, int]:
    """The records of ``entries`` as columns (one part: this tag, one empty resource map)
    and the number of invalid entries skipped; ``strict`` raises ``PermanentError`` instead.

    The entries' maps are taken over. Why columns: a ``LogRecord`` per event cost as much
    as the rest of the conversion, and the pipeline and store work on columns anyway.
    """
    if type(entries) is list:  # a uniform batch: converted column by column
        uniform = uniform_columns(tag, entries, observed_ns)
        if uniform is not None:
            return uniform, 0
    times: list[int] = []
    bodies: list[str] = []
    numbers: list[Severity | int] = []
    texts: list[str] = []
    attributes: list[Mapping[str, AttributeValue]] = []
    traces: dict[int, TraceId] = {}
    spans: dict[int, SpanId] = {}
    add_time, add_body, add_number = times.append, bodies.append, numbers.append
    add_text, add_attributes = texts.append, attributes.append
    unspecified = Severity.UNSPECIFIED
    number: Severity
    trace_id: str | None = None
    span_id: str | None = None
    invalid = 0
    for entry in entries:
        if type(entry) is not list and not isinstance(entry, list | tuple):
            if strict:
                raise PermanentError("a Forward entry must be [time, record]")
            invalid += 1  # not even an array: counted without raising (a zeros bomb is 16 M)
            continue
        general = False  # the general path converted the whole event
        try:
            if len(entry) != 2:
                _invalid("a Forward entry must be [time, record]")
            time_value, record = entry
            if type(record) is not dict and not isinstance(record, dict):
                _invalid("a Forward record must be a map")
            kind = type(time_value)
            if kind is int and 0 < time_value < MAX_SECONDS:
                time_ns = time_value * NS_PER_S
            elif kind is EXT and time_value.start == 0 and len(time_value.stop) == 8:
                seconds, nanos = _unpack_event_time(time_value.stop)
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
                body, number, severity_text, fields, trace_id, span_id = _general(record, max_depth)
                general = True
            if not general:
                del record[key]
                number = unspecified
                severity_text = ""
                if not LIFTED_KEYS.isdisjoint(record):
                    for key in SEVERITY_KEYS:
                        value = record.get(key)
                        if type(value) is str:
                            del record[key]
                            severity_text = value
                            number = severity(value)
                            break
                    if not ID_KEYS.isdisjoint(record):
                        trace_id = _lift_id(record, TRACE_ID_KEYS, _HEX32, 16)
                        span_id = _lift_id(record, SPAN_ID_KEYS, _HEX16, 8)
                fields = record
                for key, value in record.items():  # flat (string keys, scalars as they are)?
                    kind = type(value)
                    if type(key) is not str or (
                        kind not in FLAT_TYPES
                        and (kind is not int or not INT64_MIN <= value <= INT64_MAX)
                    ):
                        fields = {}
                        _flatten(record, "", fields, max_depth)
                        break
        except PermanentError:
            if strict:
                raise
            invalid += 1
            trace_id = span_id = None
            continue
        if trace_id is not None:  # only now: an invalid event must leave no trace here
            traces[len(times)] = TraceId(trace_id)
            trace_id = None
        if span_id is not None:
            spans[len(times)] = SpanId(span_id)
            span_id = None
        add_time(time_ns)
        add_body(body)
        add_number(number)
        add_text(severity_text)
        add_attributes(fields)
    n = len(times)
    columns = LogColumns(
        tag,
        {},
        times,
        bodies,
        numbers,
        texts,
        attributes,
        [observed_ns] * n,
        [traces.get(i) for i in range(n)] if traces else None,
        [spans.get(i) for i in range(n)] if spans else None,
    )
    return columns, invalid


def _invalid(reason: str) -> NoReturn:
    raise PermanentError(reason)


def _lift_severity(fields: dict[str, Any]) -> tuple[Severity, str]:
    for key in SEVERITY_KEYS:
        value = fields.get(key)
        if isinstance(value, str):
            del fields[key]
            return severity(value), value
    return Severity.UNSPECIFIED, ""


def _general(
    record: dict[str, Any], max_depth: int
) -> tuple[str, Severity, str, dict[str, AttributeValue], str | None, str | None]:
    """An event without a string body: the body is the record's JSON (lifted fields
    included), the attributes a flattened copy without the lifted fields. Returns body,
    severity, severity text, attributes, trace id and span id (hex or None)."""
    fields = dict(record)
    number, severity_text = _lift_severity(fields)
    trace_id = _lift_id(fields, TRACE_ID_KEYS, _HEX32, 16)
    span_id = _lift_id(fields, SPAN_ID_KEYS, _HEX16, 8)
    attributes: dict[str, AttributeValue] = {}
    _flatten(fields, "", attributes, max_depth)  # first: it bounds the depth json.dumps meets
    body = json.dumps(record, separators=(",", ":"), ensure_ascii=False, default=_json_default)
    return body, number, severity_text, attributes, trace_id, span_id


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
    if type(value) is EXT:  # an ext value of a packed payload: its bytes
        return bytes(value.stop)
    if value is None or isinstance(value, str | bool | float | bytes):
        return value
    if isinstance(value, int):
        return value if INT64_MIN <= value <= INT64_MAX else str(value)
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
    if type(value) is EXT:  # as json encodes an ExtType: a (code, data) tuple
        return [value.start, bytes(value.stop).decode("utf-8", "replace")]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, msgpack.ExtType):
        return bytes(value.data).decode("utf-8", "replace")
    if isinstance(value, msgpack.Timestamp):
        return int(value.to_unix_nano())
    return str(value)

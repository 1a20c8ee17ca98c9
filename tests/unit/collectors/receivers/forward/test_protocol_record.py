"""Forward events → LogRecords on the receiver's fast path: batches, EventTime, and the
documented mapping rules checked against a plain reference implementation (property test)."""

from __future__ import annotations

import dataclasses
import json
import struct
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors._core.model import LogRecord, Severity
from collectors.receivers.forward.protocol import msgpack_safe
from collectors.receivers.forward.protocol.columns import uniform_columns
from collectors.receivers.forward.protocol.message import (
    EXT,
    ForwardLimits,
    Mode,
    decode_message,
    entry_batches,
)
from collectors.receivers.forward.protocol.record import (
    BODY_KEYS,
    to_log_columns,
    to_log_records,
)

LIMITS = ForwardLimits(max_message_bytes=1 << 20, max_decompressed_bytes=1 << 20)
NOW = 1_700_000_999_000_000_000
T = 1_700_000_000
TRACE = "0af7651916cd43dd8448eb211c80319c"
_ints = st.integers(min_value=-(2**63), max_value=2**64 - 1)


def _et(seconds: int, nanos: int) -> msgpack.ExtType:
    return msgpack.ExtType(0, struct.pack(">II", seconds, nanos))


def _pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)  # type: ignore[no-any-return]


def _packed(*events: tuple[Any, dict[str, Any]]) -> bytes:
    return b"".join(_pack([t, r]) for t, r in events)


def _parse(wire: bytes) -> list[LogRecord]:
    """Bytes → records, the way the receiver does it (batches of 2 entries)."""
    message = decode_message(msgpack_safe.unpack_one(wire, LIMITS.msgpack))
    records: list[LogRecord] = []
    for batch in entry_batches(message, LIMITS, 2):
        got, _ = to_log_records(message.tag, batch, now_ns=NOW, max_depth=LIMITS.max_depth)
        records += got
    return records


def _packed_records(*records: dict[str, Any], time: Any = T) -> list[LogRecord]:
    return _parse(_pack(["t", _packed(*((time, r) for r in records))]))


def test_ext_values_decode_alike_in_packed_and_forward_modes() -> None:
    et = _et(T, 3)
    record = {"message": "m", "et": et, "x": msgpack.ExtType(3, b"ab"), "span_id": et}
    (packed,) = _packed_records(record, time=et)
    (forward,) = _parse(_pack(["t", [[et, record]]]))
    assert packed == forward
    assert packed.time_unix_nano == T * 10**9 + 3
    assert packed.span_id is None  # an ext is not an id, even with 8 bytes
    assert packed.attributes == {"et": et.data, "x": b"ab", "span_id": et.data}
    assert {type(v) for v in packed.attributes.values()} == {bytes}


@pytest.mark.parametrize(
    ("time", "expected"),
    [
        pytest.param(_et(0, 0), NOW, id="zero-eventtime-is-now"),
        pytest.param(_et(T, 999_999_999), T * 10**9 + 999_999_999, id="last-nanosecond"),
        pytest.param(0, NOW, id="zero-int-is-now"),
        pytest.param(None, NOW, id="nil-is-now"),
    ],
)
def test_packed_times(time: Any, expected: int) -> None:
    assert [r.time_unix_nano for r in _packed_records({"log": "x"}, time=time)] == [expected]


def test_packed_eventtime_with_bad_nanoseconds_is_skipped() -> None:
    wire = _pack(["t", _packed((_et(T, 10**9), {"log": "bad"}), (T, {"log": "ok"}))])
    message = decode_message(msgpack_safe.unpack_one(wire, LIMITS.msgpack))
    batch = [e for b in entry_batches(message, LIMITS, 10) for e in b]
    records, invalid = to_log_records("t", batch, now_ns=NOW, max_depth=8)
    assert ([r.body for r in records], invalid) == (["ok"], 1)


def test_eventtime_second_element_is_message_mode() -> None:
    assert decode_message(["t", msgpack.ExtType(0, b"\0" * 8), {}]).mode is Mode.MESSAGE


def test_packed_ext_values_are_decoded_to_code_and_bytes() -> None:
    """msgpack builds packed payloads' ext values with a C type: slice(code, data)."""
    wire = _pack(["t", _packed((_et(T, 7), {"msg": "m", "x": msgpack.ExtType(5, b"ab")}))])
    message = decode_message(msgpack_safe.unpack_one(wire, LIMITS.msgpack))
    ((time, record),) = next(entry_batches(message, LIMITS, 10))
    assert (type(time), time.start, len(time.stop)) == (EXT, 0, 8)
    assert record["x"] == EXT(5, b"ab")
    (parsed,) = _parse(wire)
    assert (parsed.time_unix_nano, parsed.attributes) == (T * 10**9 + 7, {"x": b"ab"})


def test_batch_skips_and_counts_invalid_entries_and_shares_one_resource() -> None:
    entries_ = [
        [T, {"message": "a", "n": 1}],
        [T],
        [T, {"message": "deep", "a": {"b": {"c": {"d": {"e": 1}}}}}],
        [-1, {"message": "bad time"}],
        [T, {"log": "b", "big": 2**64 - 1, "k": {"v": [1, {"x": 2}]}}],
        [T, {"level": "error"}],
    ]
    records, invalid = to_log_records("t", entries_, now_ns=NOW, max_depth=4, observed_ns=7)
    assert invalid == 3
    assert [(r.body, r.severity_number) for r in records] == [
        ("a", Severity.UNSPECIFIED),
        ("b", Severity.UNSPECIFIED),
        ('{"level":"error"}', Severity.ERROR),
    ]
    assert records[1].attributes == {"big": str(2**64 - 1), "k.v": [1, '{"x":2}']}
    assert {r.observed_time_unix_nano for r in records} == {7}
    assert records[0].resource is records[2].resource == {}
    with pytest.raises(dataclasses.FrozenInstanceError):
        records[0].body = "changed"  # type: ignore[misc]
    assert records[0] == LogRecord(
        time_unix_nano=T * 10**9,
        body="a",
        tag="t",
        attributes={"n": 1},
        observed_time_unix_nano=7,
    )


@pytest.mark.parametrize(
    ("text", "number"),
    [
        pytest.param("warn", Severity.WARN, id="lower"),
        pytest.param("ERROR", Severity.ERROR, id="upper"),
        pytest.param("Fatal", Severity.FATAL, id="capitalized"),
        pytest.param("eRrOr", Severity.ERROR, id="mixed-case"),
        pytest.param("Information", Severity.INFO, id="information"),
        pytest.param("verbose", Severity.UNSPECIFIED, id="unknown-name-kept-as-text"),
    ],
)
def test_severity_names(text: str, number: Severity) -> None:
    (record,) = _packed_records({"message": "m", "severity": text})
    assert (record.severity_number, record.severity_text, record.attributes) == (number, text, {})


def test_first_valid_id_key_is_lifted_the_other_stays() -> None:
    raw = bytes(range(1, 17))
    (record,) = _packed_records({"msg": "m", "trace_id": "xyz", "traceId": raw, "spanId": "0" * 16})
    assert record.trace_id == raw.hex()
    assert record.span_id is None
    assert record.attributes == {"trace_id": "xyz", "spanId": "0" * 16}


def test_ids_of_a_skipped_event_stay_with_it() -> None:
    span = "00f067aa0ba902b7"
    entries_ = [
        [T, {"msg": "deep", "trace_id": TRACE, "spanId": span, "a": {"b": {"c": {"d": 1}}}}],
        [T, {"msg": "next"}],
        [T, {"msg": "traced", "traceId": TRACE}],
        [T, {"n": 1, "span_id": span}],  # the general path (no string body)
    ]
    columns, invalid = to_log_columns("t", entries_, now_ns=NOW, max_depth=3, observed_ns=5)
    assert invalid == 1
    assert columns.trace_ids == [None, TRACE, None]
    assert columns.span_ids == [None, None, span]
    assert columns.observed == [5, 5, 5]
    assert columns.bodies == ["next", "traced", '{"n":1,"span_id":"00f067aa0ba902b7"}']


def test_no_id_columns_without_ids() -> None:
    columns, invalid = to_log_columns("t", [[T, {"msg": "m"}], 0], now_ns=NOW, max_depth=3)
    assert (invalid, len(columns), columns.trace_ids, columns.span_ids) == (1, 1, None, None)


def _reference(tag: str, time_ns: int, record: dict[str, Any]) -> LogRecord:
    """docs/receivers/forward.md's rules, written out plainly (no fast paths)."""

    def first(keys: tuple[str, ...], ok: Any) -> tuple[str | None, Any]:
        return next(((k, fields[k]) for k in keys if k in fields and ok(fields[k])), (None, None))

    def id_ok(size: int) -> Any:
        def ok(v: Any) -> bool:
            if type(v) is bytes:
                return len(v) == size and any(v)
            return (
                isinstance(v, str)
                and len(v) == 2 * size
                and all(c in "0123456789abcdefABCDEF" for c in v)
                and v.strip("0") != ""
            )

        return ok

    def hex_of(v: Any) -> Any:
        return None if v is None else (v.hex() if isinstance(v, bytes) else v.lower())

    def scalar(v: Any) -> Any:
        if isinstance(v, msgpack.ExtType):
            return v.data
        if isinstance(v, int) and not isinstance(v, bool) and not -(2**63) <= v < 2**63:
            return str(v)
        if isinstance(v, list):
            return [
                json.dumps(i, separators=(",", ":"), ensure_ascii=False, default=_jd)
                if isinstance(i, dict)
                else scalar(i)
                for i in v
            ]
        return v

    def flatten(m: dict[str, Any], prefix: str, out: dict[str, Any]) -> None:
        for k, v in m.items():
            if isinstance(v, dict):
                flatten(v, f"{prefix}{k}.", out)
            else:
                out[f"{prefix}{k}"] = scalar(v)

    fields = dict(record)
    body_key, body = first(("message", "log", "msg"), lambda v: isinstance(v, str))
    sev_key, sev = first(("level", "severity"), lambda v: isinstance(v, str))
    trace_key, trace = first(("trace_id", "traceId"), id_ok(16))
    span_key, span = first(("span_id", "spanId"), id_ok(8))
    for key in (body_key, sev_key, trace_key, span_key):
        fields.pop(key, None)  # type: ignore[arg-type]
    attributes: dict[str, Any] = {}
    flatten(fields, "", attributes)
    names = {"trace": 1, "debug": 5, "info": 9, "information": 9, "notice": 9, "warn": 13,
             "warning": 13, "error": 17, "err": 17, "fatal": 21, "critical": 21, "crit": 21,
             "alert": 21, "emerg": 21, "panic": 21}  # fmt: skip
    return LogRecord(
        time_unix_nano=time_ns,
        body=body
        if body is not None
        else json.dumps(record, separators=(",", ":"), ensure_ascii=False, default=_jd),
        tag=tag,
        severity_number=names.get(sev.lower(), 0) if sev is not None else 0,
        severity_text=sev or "",
        attributes=attributes,
        trace_id=hex_of(trace),
        span_id=hex_of(span),
    )


def _jd(v: Any) -> Any:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


_special_values = st.one_of(
    st.sampled_from([TRACE, TRACE.upper(), "0" * 32, "b7ad6b7169203331", "0" * 16, "INFO", "x"]),
    st.binary(min_size=8, max_size=8),
    st.binary(min_size=16, max_size=16),
)
_flat_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        _ints,
        st.floats(allow_nan=False),
        st.text(max_size=8),
        st.binary(max_size=8),
        st.builds(msgpack.ExtType, st.integers(0, 2), st.binary(max_size=9)),
    ),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)
_record_maps = st.dictionaries(
    st.sampled_from(
        ["message", "log", "msg", "level", "severity", "trace_id", "traceId", "span_id", "spanId"]
    )
    | st.text(max_size=4),
    _special_values | _flat_values,
    max_size=7,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_record_maps)
def test_records_follow_the_documented_rules(record: dict[str, Any]) -> None:
    wire = _pack(["t", _packed((T, record))])
    expected = _reference("t", T * 10**9, msgpack.unpackb(_pack(record)))
    assert _parse(wire) == [expected]


_UNIFORM_KEYS = ["message", "log", "msg", "level", "severity", "agent", "n", "f", "ok"]
_COLUMN_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "str": st.sampled_from(["info", "WARN", "Fatal", "eRrOr", "verbose", "GET /a 200"]),
    "int": st.sampled_from([0, -1, 7, 2**63 - 1, -(2**63), 2**63, 2**64 - 1]),
    "float": st.floats(allow_nan=False),
    "bool": st.booleans(),
    "nil": st.none(),
    "any": _special_values | _flat_values,
}


@st.composite
def _batches(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Batches that are mostly uniform (one value kind per key), sometimes not."""
    keys = draw(st.lists(st.sampled_from(_UNIFORM_KEYS), max_size=5, unique=True))
    kinds = {key: draw(st.sampled_from(sorted(_COLUMN_VALUES))) for key in keys}
    body = draw(st.sampled_from(BODY_KEYS))  # mostly a string body: the column path
    if draw(st.integers(0, 4)):
        keys.insert(draw(st.integers(0, len(keys))), body)
        kinds[body] = "str"
    records = []
    for _ in range(draw(st.integers(1, 6))):
        record = {}
        for key in dict.fromkeys(keys):
            if draw(st.integers(0, 29)) == 0:  # now and then an odd one out
                if draw(st.booleans()):
                    continue
                record[key] = draw(_COLUMN_VALUES["any"])
            else:
                record[key] = draw(_COLUMN_VALUES[kinds[key]])
        records.append(record)
    return records


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_batches(), st.sampled_from(["int", "same-int", "eventtime"]))
def test_whole_batches_follow_the_documented_rules(
    records: list[dict[str, Any]], times: str
) -> None:
    """Uniform batches are converted column by column: the records are the same."""
    events = []
    expected = []
    for i, record in enumerate(records):
        seconds = T if times == "same-int" else T + i
        wire_time: Any = _et(seconds, 5) if times == "eventtime" else seconds
        time_ns = seconds * 10**9 + (5 if times == "eventtime" else 0)
        events.append((wire_time, record))
        expected.append(_reference("t", time_ns, msgpack.unpackb(_pack(record))))
    message = decode_message(
        msgpack_safe.unpack_one(_pack(["t", _packed(*events)]), LIMITS.msgpack)
    )
    (batch,) = entry_batches(message, LIMITS, 100)
    got, invalid = to_log_records("t", batch, now_ns=NOW, max_depth=LIMITS.max_depth)
    assert (got, invalid) == (expected, 0)


def test_a_uniform_batch_takes_the_column_path() -> None:
    batch = [[T, {"message": "m", "level": "warn", "n": i}] for i in range(3)]
    columns = uniform_columns("t", batch, 9)
    assert columns is not None
    assert (columns.bodies, columns.severity_texts) == (["m"] * 3, ["warn"] * 3)
    assert columns.attributes == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert uniform_columns("t", [[T, {"message": "m", "": {"a": 1}}]], 9) is None  # nested
    mixed = [[T, {"message": "m"}], [T, {"log": "l"}]]
    assert uniform_columns("t", mixed, 9) is None
    assert mixed == [[T, {"message": "m"}], [T, {"log": "l"}]]  # untouched when refused

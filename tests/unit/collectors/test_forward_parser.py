"""Forward protocol parsing: modes, times, gzip members, records → LogRecords, bad input, fuzz."""

from __future__ import annotations

import contextlib
import gzip
import json
import struct
import zlib
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.errors import LimitExceededError, PermanentError
from collectors.model import LogRecord, Severity
from collectors.parsers import msgpack_safe
from collectors.parsers.forward import (
    EventTime,
    ForwardLimits,
    Mode,
    decode_message,
    entries,
    entry_batches,
    event_time_ns,
    gunzip_members,
)
from collectors.parsers.forward_record import to_log_record, to_log_records

pytestmark = pytest.mark.unit

LIMITS = ForwardLimits(max_message_bytes=1 << 20, max_decompressed_bytes=1 << 20)
NOW = 1_700_000_999_000_000_000
T = 1_700_000_000
TRACE = "0af7651916cd43dd8448eb211c80319c"


def _et(seconds: int, nanos: int) -> msgpack.ExtType:
    return msgpack.ExtType(0, struct.pack(">II", seconds, nanos))


def _packed(*events: tuple[Any, dict[str, Any]]) -> bytes:
    return b"".join(msgpack.packb([t, r], use_bin_type=True) for t, r in events)


def _parse(wire: bytes) -> tuple[Mode, Any, list[LogRecord]]:
    """Bytes → (mode, chunk, records), the way the receiver does it."""
    message = decode_message(msgpack_safe.unpack_one(wire, LIMITS.msgpack))
    records = [
        to_log_record(message.tag, e, now_ns=NOW, max_depth=LIMITS.max_depth)
        for e in entries(message, LIMITS)
    ]
    return message.mode, message.chunk, records


def _pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("wire", "mode", "chunk", "times", "bodies"),
    [
        pytest.param(
            _pack(["app", T, {"message": "a"}]),
            Mode.MESSAGE,
            None,
            [T * 10**9],
            ["a"],
            id="message-int-time",
        ),
        pytest.param(
            _pack(["app", _et(T, 5), {"log": "a"}, {"chunk": "c1"}]),
            Mode.MESSAGE,
            "c1",
            [T * 10**9 + 5],
            ["a"],
            id="message-eventtime-fixext8-chunk",
        ),
        pytest.param(
            _pack(["app", 1.5, {"msg": "a"}]),
            Mode.MESSAGE,
            None,
            [1_500_000_000],
            ["a"],
            id="message-float-time",
        ),
        pytest.param(
            _pack(["app", 0, {"message": "a"}]),
            Mode.MESSAGE,
            None,
            [NOW],
            ["a"],
            id="message-zero-time-is-now",
        ),
        pytest.param(
            _pack(["app", [[T, {"message": "a"}], [_et(T, 1), {"message": "b"}]]]),
            Mode.FORWARD,
            None,
            [T * 10**9, T * 10**9 + 1],
            ["a", "b"],
            id="forward",
        ),
        pytest.param(
            _pack(["app", _packed((T, {"message": "a"}), (T + 1, {"message": "b"})), {}]),
            Mode.PACKED_FORWARD,
            None,
            [T * 10**9, (T + 1) * 10**9],
            ["a", "b"],
            id="packed-forward",
        ),
        pytest.param(
            _pack(
                [
                    "app",
                    _packed((T, {"message": "a"})),
                    {"chunk": "c2", "size": 1, "compressed": "text"},
                ]
            ),
            Mode.PACKED_FORWARD,
            "c2",
            [T * 10**9],
            ["a"],
            id="packed-forward-compressed-text",
        ),
        pytest.param(
            _pack(
                [
                    "app",
                    gzip.compress(_packed((T, {"message": "a"})))
                    + gzip.compress(_packed((T, {"message": "b"}), (T, {"message": "c"}))),
                    {"chunk": "c3", "compressed": "gzip"},
                ]
            ),
            Mode.COMPRESSED_PACKED_FORWARD,
            "c3",
            [T * 10**9] * 3,
            ["a", "b", "c"],
            id="compressed-two-gzip-members",
        ),
    ],
)
def test_modes(
    wire: bytes, mode: Mode, chunk: str | None, times: list[int], bodies: list[str]
) -> None:
    got_mode, got_chunk, records = _parse(wire)
    assert (got_mode, got_chunk) == (mode, chunk)
    assert [r.time_unix_nano for r in records] == times
    assert [r.body for r in records] == bodies
    assert {r.tag for r in records} == {"app"}


def test_eventtime_ext8_form() -> None:
    # ext8 (C7 08 00) instead of fixext8 (D7 00): same EventTime.
    wire = b"\x93\xa3app\xc7\x08\x00" + struct.pack(">II", T, 7) + _pack({"message": "x"})
    _, _, records = _parse(wire)
    assert records[0].time_unix_nano == T * 10**9 + 7


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        pytest.param(
            {"message": "hi", "level": "WARNING", "trace_id": TRACE, "spanId": "b7ad6b7169203331"},
            LogRecord(
                time_unix_nano=T * 10**9,
                body="hi",
                tag="t",
                severity_number=Severity.WARN,
                severity_text="WARNING",
                trace_id=TRACE,  # type: ignore[arg-type]
                span_id="b7ad6b7169203331",  # type: ignore[arg-type]
            ),
            id="lifted-fields",
        ),
        pytest.param(
            {"status": 200, "k8s": {"pod": "p", "labels": {"app": "a"}}, "big": 2**64 - 1},
            LogRecord(
                time_unix_nano=T * 10**9,
                body='{"status":200,"k8s":{"pod":"p","labels":{"app":"a"}},"big":18446744073709551615}',
                tag="t",
                attributes={
                    "status": 200,
                    "k8s.pod": "p",
                    "k8s.labels.app": "a",
                    "big": "18446744073709551615",
                },
            ),
            id="json-body-flattened-attributes",
        ),
        pytest.param(
            {"log": 5, "message": "m", "trace_id": "not-hex", "list": [1, {"a": 1}]},
            LogRecord(
                time_unix_nano=T * 10**9,
                body="m",
                tag="t",
                attributes={"log": 5, "trace_id": "not-hex", "list": [1, '{"a":1}']},
            ),
            id="non-string-body-key-and-bad-trace-id-stay",
        ),
        pytest.param(
            {"message": "x", "severity": "notice", "trace_id": "0" * 32},
            LogRecord(
                time_unix_nano=T * 10**9,
                body="x",
                tag="t",
                severity_number=Severity.INFO,
                severity_text="notice",
                attributes={"trace_id": "0" * 32},
            ),
            id="all-zero-trace-id-is-not-lifted",
        ),
    ],
)
def test_record_mapping(record: dict[str, Any], expected: LogRecord) -> None:
    assert to_log_record("t", [T, record], now_ns=NOW, max_depth=32) == expected


@pytest.mark.parametrize(
    "obj",
    [
        pytest.param("tag", id="not-an-array"),
        pytest.param(["tag"], id="one-element"),
        pytest.param([1, T, {}], id="int-tag"),
        pytest.param(["", T, {}], id="empty-tag"),
        pytest.param(["tag", T], id="message-without-record"),
        pytest.param(["tag", {"a": 1}], id="map-second-element"),
        pytest.param(["tag", [], "opt"], id="non-map-option"),
        pytest.param(["tag", [], {"chunk": 5}], id="int-chunk"),
        pytest.param(["tag", b"", {"compressed": "zstd"}], id="unknown-compression"),
        pytest.param(["tag", [], {"compressed": "gzip"}], id="gzip-in-forward-mode"),
        pytest.param(["tag", T, {}, {}, {}], id="five-elements"),
    ],
)
def test_bad_messages(obj: Any) -> None:
    with pytest.raises(PermanentError):
        list(entries(decode_message(obj), LIMITS))


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"not gzip", id="not-gzip"),
        pytest.param(gzip.compress(b"\x92\x01")[:-4], id="truncated-gzip"),
        pytest.param(gzip.compress(b"\x92\x01"), id="truncated-entry"),
        pytest.param(gzip.compress(b"\xc1"), id="bad-msgpack-inside"),
        pytest.param(b"", id="empty"),
    ],
)
def test_bad_compressed_payloads(payload: bytes) -> None:
    message = decode_message(["tag", payload, {"compressed": "gzip"}])
    with pytest.raises(PermanentError):
        list(entries(message, LIMITS))


def test_gzip_bomb_is_refused_at_the_limit() -> None:
    inflater = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = inflater.compress(b"\0" * (64 << 20)) + inflater.flush()  # 64 MiB → ~64 KiB
    produced = 0
    with pytest.raises(LimitExceededError):
        for piece in gunzip_members(bomb, max_bytes=1 << 20):
            produced += len(piece)
    assert produced <= 1 << 20


@pytest.mark.parametrize(
    "entry",
    [
        pytest.param([T], id="short-entry"),
        pytest.param([T, "record"], id="record-not-map"),
        pytest.param([T, None], id="nil-record"),
        pytest.param([True, {}], id="bool-time"),
        pytest.param([-5, {}], id="negative-time"),
        pytest.param([2**40, {}], id="time-too-large"),
        pytest.param([float("nan"), {}], id="nan-time"),
        pytest.param([_et(T, 10**9), {}], id="eventtime-nanos-out-of-range"),
        pytest.param([msgpack.ExtType(1, b"\0" * 8), {}], id="wrong-ext-type"),
        pytest.param([msgpack.ExtType(0, b"\0" * 4), {}], id="short-eventtime"),
        pytest.param([T, {"a": {"b": {"c": {"d": 1}}}}], id="too-deep-map"),
        pytest.param([T, {"a": [[[[1]]]]}], id="too-deep-array"),
        pytest.param([T, {"a": [{"b": {"c": {"d": 1}}}]}], id="too-deep-map-in-array"),
    ],
)
def test_invalid_entries(entry: Any) -> None:
    with pytest.raises(PermanentError):
        to_log_record("t", entry, now_ns=NOW, max_depth=3)


def test_event_time_accepts_msgpack_timestamp() -> None:
    assert event_time_ns(msgpack.Timestamp(T, 9), NOW) == T * 10**9 + 9


def _parse_all(data: bytes) -> None:
    """The receiver's path from bytes to records; only PermanentError may escape."""
    for obj in msgpack_safe.stream([data], LIMITS.msgpack):
        if obj is None:
            continue
        message = decode_message(obj)
        for entry in entries(message, LIMITS):
            try:
                to_log_record(message.tag, entry, now_ns=NOW, max_depth=8)
            except PermanentError:
                continue


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=512))
def test_fuzz_random_bytes(data: bytes) -> None:
    with contextlib.suppress(PermanentError):
        _parse_all(data)


_ints = st.integers(min_value=-(2**63), max_value=2**64 - 1)
_leaf = st.one_of(
    st.none(),
    st.booleans(),
    _ints,
    st.floats(),
    st.text(max_size=20),
    st.binary(max_size=20),
    st.builds(msgpack.ExtType, st.integers(0, 2), st.binary(max_size=9)),
)
_values = st.recursive(
    _leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)
_times = st.one_of(
    st.integers(min_value=-1, max_value=2**35),
    st.floats(),
    st.builds(_et, st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
    st.none(),
)


@st.composite
def _messages(draw: st.DrawFn) -> Any:
    tag = draw(st.one_of(st.text(max_size=8), _ints))
    pairs = draw(st.lists(st.tuples(_times, _values), max_size=4))
    options = draw(
        st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {},
                optional={
                    "chunk": st.one_of(st.text(max_size=8), _ints),
                    "compressed": st.sampled_from(["gzip", "text", "zz"]),
                },
            ),
        )
    )
    kind = draw(st.sampled_from(["message", "forward", "packed", "gzip", "raw"]))
    if kind == "message":
        t, r = pairs[0] if pairs else (0, {})
        body: Any = [tag, t, r]
    elif kind == "forward":
        body = [tag, [list(p) for p in pairs]]
    elif kind == "raw":
        body = draw(_values)
    else:
        packed = b"".join(msgpack.packb(list(p), use_bin_type=True) for p in pairs)
        cut = draw(st.integers(0, len(packed)))
        packed = packed[:cut] if draw(st.booleans()) else packed
        body = [tag, gzip.compress(packed) if kind == "gzip" else packed]
    if options is not None and isinstance(body, list) and kind != "raw":
        body.append(options)
    return body


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_messages())
def test_fuzz_structured_messages(message: Any) -> None:
    with contextlib.suppress(PermanentError):
        _parse_all(msgpack.packb(message, use_bin_type=True))


def _packed_records(*records: dict[str, Any], time: Any = T) -> list[LogRecord]:
    _, _, got = _parse(_pack(["t", _packed(*((time, r) for r in records))]))
    return got


def test_ext_values_decode_alike_in_packed_and_forward_modes() -> None:
    et = _et(T, 3)
    record = {"message": "m", "et": et, "x": msgpack.ExtType(3, b"ab"), "span_id": et}
    (packed,) = _packed_records(record, time=et)
    (forward,) = _parse(_pack(["t", [[et, record]]]))[2]
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
    assert decode_message(["t", EventTime(b"\0" * 8), {}]).mode is Mode.MESSAGE


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
    if isinstance(v, msgpack.ExtType):
        return v.data.decode("utf-8", "replace")
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
    assert _parse(wire)[2] == [expected]

"""Forward protocol parsing: modes, times, gzip members, records → LogRecords, bad input, fuzz."""

from __future__ import annotations

import contextlib
import gzip
import struct
import zlib
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors._core.errors import LimitExceededError, PermanentError
from collectors._core.model import LogRecord, Severity
from collectors.receivers.forward.protocol import msgpack_safe
from collectors.receivers.forward.protocol.message import (
    ForwardLimits,
    Mode,
    decode_message,
    entries,
    event_time_ns,
    gunzip_members,
)
from collectors.receivers.forward.protocol.record import to_log_record

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

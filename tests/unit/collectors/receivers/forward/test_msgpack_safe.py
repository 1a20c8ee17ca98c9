"""Bounded msgpack decoding: bombs are refused before they allocate (S2), errors are Permanent."""

from __future__ import annotations

import resource

import msgpack
import pytest

from collectors._core.errors import LimitExceededError, PermanentError
from collectors.receivers.forward.protocol import msgpack_safe
from collectors.receivers.forward.protocol.msgpack_safe import MsgpackLimits

LIMITS = MsgpackLimits(max_buffer_bytes=1024 * 1024, max_container_len=10_000)


def _max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize(
    ("data", "error"),
    [
        pytest.param(b"\xdd\xff\xff\xff\xff", LimitExceededError, id="array32-4G-no-body"),
        pytest.param(b"\xdf\xff\xff\xff\xff", LimitExceededError, id="map32-4G-no-body"),
        pytest.param(b"\x91" * 10_000 + b"\xc0", PermanentError, id="depth-10k"),
        pytest.param(b"\xc1", PermanentError, id="reserved-byte"),
        pytest.param(b"\x81\x01\x02", PermanentError, id="int-map-key"),
        pytest.param(b"\x92\x01", PermanentError, id="truncated"),
        pytest.param(b"\x01\x02", PermanentError, id="two-objects"),
    ],
)
def test_unpack_one_refuses(data: bytes, error: type[Exception]) -> None:
    before = _max_rss_mib()
    with pytest.raises(error):
        msgpack_safe.unpack_one(data, LIMITS)
    assert _max_rss_mib() - before < 16


def test_str32_declaring_4gb_is_refused_at_the_buffer_bound() -> None:
    before = _max_rss_mib()
    unpacker = msgpack_safe.new_unpacker(LIMITS)
    msgpack_safe.feed(unpacker, b"\xdb\xff\xff\xff\xff")
    assert list(msgpack_safe.objects(unpacker)) == []
    with pytest.raises(LimitExceededError):
        for _ in range(100):  # 100 x 64 KiB = 6.4 MiB offered; the bound is 1 MiB
            msgpack_safe.feed(unpacker, b"a" * 65536)
            assert list(msgpack_safe.objects(unpacker)) == []
    assert _max_rss_mib() - before < 16


def test_bin32_declaring_4gb_in_a_stream_is_truncated() -> None:
    with pytest.raises(PermanentError):
        list(msgpack_safe.stream([b"\xc6\xff\xff\xff\xff", b"xx"], LIMITS))


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(["tag", 1, {"a": [1, 2.5, None, True, b"\x00"]}], id="message"),
        pytest.param([[[[[[]]]]]], id="nested-5"),
        pytest.param("\u00e9" * 100, id="unicode"),
        pytest.param(msgpack.ExtType(0, b"\x00" * 8), id="event-time"),
    ],
)
def test_round_trip(value: object) -> None:
    assert msgpack_safe.unpack_one(msgpack.packb(value), LIMITS) == value


def test_stream_in_pieces_yields_every_object() -> None:
    data = b"".join(msgpack.packb([i, {"k": "v" * i}]) for i in range(50))
    pieces = [data[i : i + 7] for i in range(0, len(data), 7)]
    assert [o[0] for o in msgpack_safe.stream(pieces, LIMITS)] == list(range(50))


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    assert msgpack_safe.unpack_one(b"\xa2\xff\xfe", LIMITS) == "\ufffd\ufffd"


def _batches(data: bytes, size: int, piece: int) -> list[list[object]]:
    pieces = [data[i : i + piece] for i in range(0, len(data), piece)]
    return list(msgpack_safe.batches(pieces, LIMITS, size, ext_hook=msgpack.ExtType))


@pytest.mark.parametrize(
    ("count", "size", "piece", "lengths"),
    [
        pytest.param(5, 2, 1 << 20, [2, 2, 1], id="one-piece"),
        pytest.param(6, 3, 1 << 20, [3, 3], id="exact-multiple"),
        pytest.param(50, 20, 7, [20, 20, 10], id="small-pieces"),
        pytest.param(0, 4, 1 << 20, [], id="empty"),
    ],
)
def test_batches_are_full_lists_in_order(
    count: int, size: int, piece: int, lengths: list[int]
) -> None:
    data = b"".join(msgpack.packb([i, {"k": "v" * i}]) for i in range(count))
    got = _batches(data, size, piece)
    assert [len(b) for b in got] == lengths
    assert [o[0] for b in got for o in b] == list(range(count))  # type: ignore[index]


@pytest.mark.parametrize(
    ("data", "error"),
    [
        pytest.param(msgpack.packb([1]) + b"\x92\x01", PermanentError, id="truncated-tail"),
        pytest.param(msgpack.packb([1]) + b"\xc1", PermanentError, id="reserved-byte"),
        pytest.param(b"\x91" * 10_000 + b"\xc0", PermanentError, id="depth-10k"),
        pytest.param(b"\xdd\xff\xff\xff\xff", LimitExceededError, id="array32-4G-no-body"),
        pytest.param(b"\x81\x01\x02", PermanentError, id="int-map-key"),
    ],
)
def test_batches_refuse_like_stream(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        _batches(data, 100, 1 << 20)


def test_take_stops_at_n_and_at_the_buffered_end() -> None:
    unpacker = msgpack_safe.new_unpacker(LIMITS)
    msgpack_safe.feed(unpacker, msgpack.packb(1) + msgpack.packb(2) + b"\x92\x03")
    assert msgpack_safe.take(unpacker, 1) == [1]
    assert msgpack_safe.take(unpacker, 10) == [2]
    msgpack_safe.feed(unpacker, b"\x04")
    assert msgpack_safe.take(unpacker, 10) == [[3, 4]]


def test_ext_hook_builds_ext_values() -> None:
    def hook(code: int, data: bytes) -> object:
        return ("ext", code, data)

    data = msgpack.packb([msgpack.ExtType(5, b"ab")])
    assert list(msgpack_safe.stream([data], LIMITS, ext_hook=hook)) == [[("ext", 5, b"ab")]]

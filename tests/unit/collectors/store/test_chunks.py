"""The chunk codec: exact round trips (NaN payloads, infinities, -0.0) and size on typical data."""

from __future__ import annotations

import math
import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors._core.errors import ChunkError
from collectors.store.chunks import (
    STALE_NAN,
    STALE_NAN_BITS,
    bits_from_values,
    decode_chunk,
    encode_chunk,
    encode_records,
    split_head,
    split_records,
)

T0 = 1_700_000_000_000


def _bits(values: list[float]) -> bytes:
    return bits_from_values(values)


@given(
    start=st.integers(min_value=-(2**52), max_value=2**52),
    gaps=st.lists(st.integers(min_value=1, max_value=2**40), max_size=300),
    raw=st.lists(st.integers(min_value=0, max_value=2**64 - 1), min_size=301, max_size=301),
)
@settings(max_examples=200, deadline=None)
def test_round_trip_any_bits(start: int, gaps: list[int], raw: list[int]) -> None:
    timestamps = [start]
    for gap in gaps:
        timestamps.append(timestamps[-1] + gap)
    value_bits = b"".join(x.to_bytes(8, "big") for x in raw[: len(timestamps)])
    assert decode_chunk(encode_chunk(timestamps, value_bits)) == (timestamps, value_bits)


@given(values=st.lists(st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1), min_size=1))
@settings(max_examples=100, deadline=None)
def test_round_trip_integer_values(values: list[int]) -> None:
    timestamps = [T0 + 15_000 * i for i in range(len(values))]
    value_bits = _bits([float(v) for v in values])
    assert decode_chunk(encode_chunk(timestamps, value_bits)) == (timestamps, value_bits)


@pytest.mark.parametrize(
    "values",
    [
        pytest.param([STALE_NAN, 1.0, STALE_NAN], id="stale-markers"),
        pytest.param([math.inf, -math.inf, 0.0, -0.0], id="infinities-and-signed-zero"),
        pytest.param([float("nan"), 5e-324, 1.7976931348623157e308], id="nan-subnormal-max"),
        pytest.param([2.0**53, -(2.0**53), 3.0], id="integers-beyond-exact"),
        pytest.param([7.0], id="single-sample"),
    ],
)
def test_round_trip_special_values(values: list[float]) -> None:
    timestamps = [T0 + 1000 * i for i in range(len(values))]
    got_ts, got_bits = decode_chunk(encode_chunk(timestamps, _bits(values)))
    assert got_ts == timestamps and got_bits == _bits(values)


def test_stale_marker_bits() -> None:
    assert struct.pack(">d", STALE_NAN) == STALE_NAN_BITS.to_bytes(8, "big")


@pytest.mark.parametrize(
    ("kind", "max_bytes_per_sample"),
    [
        pytest.param("constant", 0.3, id="constant-gauge"),
        pytest.param("counter", 1.5, id="steady-counter"),
        pytest.param("jittered-counter", 3.0, id="counter-jittered-scrapes"),
    ],
)
def test_size_on_typical_series(kind: str, max_bytes_per_sample: float) -> None:
    rng = random.Random(7)
    n = 120
    jitter = kind == "jittered-counter"
    timestamps = [T0 + 15_000 * i + (rng.randint(-5, 5) if jitter else 0) for i in range(n)]
    total = 0
    values = []
    for _ in range(n):
        total += 0 if kind == "constant" else (10 if kind == "counter" else rng.randint(0, 60))
        values.append(float(total))
    blob = encode_chunk(timestamps, _bits(values))
    assert len(blob) / n <= max_bytes_per_sample


@pytest.mark.parametrize(
    "blob",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\x02\x00\x01\x00", id="unknown-version"),
        pytest.param(b"\x01\x00\x05\x00garbage", id="corrupt-body"),
        pytest.param(b"\x01\x00\xff", id="truncated-varint"),
    ],
)
def test_corrupt_chunks_are_refused(blob: bytes) -> None:
    with pytest.raises(ChunkError):
        decode_chunk(blob)


@pytest.mark.parametrize(
    ("timestamps", "value_bits"),
    [
        pytest.param([T0, T0 + 1, T0 + 5], _bits([1.0, STALE_NAN, -2.5]), id="stale-marker"),
        pytest.param([], b"", id="empty-head"),
        pytest.param(
            [-(2**63), -1, 0, 2**63 - 1], _bits([-0.0, math.inf, -math.inf, 5e-324]), id="extremes"
        ),
        pytest.param(
            [T0], (0x7FF8_0000_DEAD_BEEF).to_bytes(8, "big"), id="nan-payload-kept-bit-for-bit"
        ),
    ],
)
def test_records_round_trip(timestamps: list[int], value_bits: bytes) -> None:
    records = encode_records(timestamps, value_bits)
    assert records == b"".join(
        struct.pack(">q", t) + value_bits[8 * i : 8 * i + 8] for i, t in enumerate(timestamps)
    )
    split = split_records(records)
    assert split == (timestamps, value_bits)
    assert all(type(t) is int for t in split[0]) and type(split[1]) is bytes


def test_a_head_of_partial_records_is_refused() -> None:
    with pytest.raises(ChunkError):
        split_records(b"\0" * 17)


@pytest.mark.parametrize(
    ("timestamps", "force", "expected_pieces", "expected_left"),
    [
        pytest.param([T0 + i for i in range(20)], False, [8, 8], 4, id="two-full-chunks"),
        pytest.param([T0 + i for i in range(20)], True, [8, 8, 4], 0, id="forced-cut-all"),
        pytest.param([T0 + i for i in range(5)], False, [], 5, id="nothing-to-cut"),
        pytest.param([T0, T0 + 1, T0 + 200_000, T0 + 200_001], False, [2], 2, id="span-limit"),
    ],
)
def test_split_head(
    timestamps: list[int], force: bool, expected_pieces: list[int], expected_left: int
) -> None:
    head = encode_records(timestamps, _bits([1.0] * len(timestamps)))
    consumed, pieces = split_head(head, max_samples=8, max_span_ms=100_000, force=force)
    assert [len(decode_chunk(blob)[0]) for _, blob in pieces] == expected_pieces
    assert [score for score, _ in pieces] == [decode_chunk(b)[0][0] for _, b in pieces]
    assert (len(head) - consumed) // 16 == expected_left

"""The native chunk decoder against the numpy one: same arrays, bit for bit, same refusals.

The numpy decoder is the fallback where no Rust toolchain built ``meshfed_native``; both
must stay interchangeable, so every case decodes one batch with each and compares. Where a
toolchain exists (cargo on PATH or in ~/.cargo/bin) ``make setup`` builds the native module,
so its absence there is a failure, not a skip.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors._core.errors import ChunkError
from collectors.store import chunks
from collectors.store.chunks import (
    STALE_NAN,
    bits_from_values,
    decode_many_native,
    decode_many_numpy,
    encode_chunk,
)
from tests.helpers.native import require_native

T0 = 1_700_000_000_000


@pytest.fixture(autouse=True)
def _native_installed() -> None:
    require_native("native" in chunks.DECODERS, what="decode_many", fallback="the numpy decoder")


def _chunk(timestamps: list[int], values: list[float]) -> bytes:
    return encode_chunk(timestamps, bits_from_values(values))


def _raw_chunk(timestamps: list[int], raw: list[int]) -> bytes:
    return encode_chunk(timestamps, b"".join(x.to_bytes(8, "big") for x in raw))


def _assert_same(blobs: list[bytes]) -> None:
    want = decode_many_numpy(blobs)
    got = decode_many_native(blobs)
    for name, w, g in zip(("timestamps", "value bits", "counts"), want, got, strict=True):
        assert g.dtype == w.dtype, name
        assert np.array_equal(g, w), name


_RNG = random.Random(11)
_STEADY = [T0 + 15_000 * i for i in range(120)]
_JITTER = [T0 + 15_000 * i + _RNG.randint(-40, 40) for i in range(120)]
_WIDE = [T0, T0 + 1, T0 + 2**33, T0 + 2**33 + 7, T0 + 2**40]  # dod beyond 32 bits: 8-byte lanes
_COUNTER = [float(10 * i) for i in range(120)]
_GAUGE = [_RNG.uniform(-1e6, 1e6) for _ in range(120)]
_ODD = [STALE_NAN, 1.5, float("nan"), -0.0, math.inf, -math.inf, 5e-324, STALE_NAN]


@pytest.mark.parametrize(
    "blobs",
    [
        pytest.param([_chunk(_STEADY, _COUNTER)], id="integer-counter-4-byte-lanes"),
        pytest.param([_chunk(_JITTER, _GAUGE)], id="xor-gauge-jittered"),
        pytest.param([_chunk(_WIDE, [1.0, 2.0, 3.0, 4.0, 5.0])], id="8-byte-lanes-integers"),
        pytest.param([_chunk(_WIDE, [0.5, STALE_NAN, 2.5, -1e300, 7.25])], id="8-byte-lanes-xor"),
        pytest.param([_chunk(_STEADY[:8], _ODD)], id="stale-markers-nan-inf-signed-zero"),
        pytest.param(
            [_raw_chunk(_STEADY[:4], [0x7FF8_0000_DEAD_BEEF, 0xFFF0_0000_0000_0001, 0, 2**64 - 1])],
            id="nan-payloads",
        ),
        pytest.param([_chunk([T0], [42.0])], id="single-sample"),
        pytest.param(
            [_chunk([-5_000, -1, 0, 3], [1.0, -2.0, 2.0**52, -(2.0**52)])], id="negatives"
        ),
        pytest.param(
            [_chunk([T0, T0 + 1], [2.0**53, 1.0]), _chunk([T0 + 5], [-(2.0**53) + 1])],
            id="integers-at-the-exact-limit",
        ),
        pytest.param(
            [
                _chunk(_STEADY, _COUNTER),
                _chunk(_WIDE, _ODD[:5]),
                _chunk(_STEADY[:7], _GAUGE[:7]),
                _chunk(_JITTER, _COUNTER),
                _chunk([T0], [STALE_NAN]),
            ],
            id="mixed-shapes-in-one-batch",
        ),
        pytest.param([], id="no-chunks"),
        pytest.param(
            [_chunk([T0 + i for i in range(300)], [float(i % 7) for i in range(300)])],
            id="two-byte-sample-count",
        ),
    ],
)
def test_native_matches_numpy(blobs: list[bytes]) -> None:
    _assert_same(blobs)


@given(
    series=st.lists(
        st.tuples(
            st.integers(min_value=-(2**52), max_value=2**52),
            st.lists(st.integers(min_value=1, max_value=2**40), max_size=150),
            st.lists(st.integers(min_value=0, max_value=2**64 - 1), min_size=151, max_size=151),
            st.booleans(),
        ),
        min_size=1,
        max_size=6,
    )
)
@settings(max_examples=150, deadline=None)
def test_native_matches_numpy_on_any_bits(
    series: list[tuple[int, list[int], list[int], bool]],
) -> None:
    blobs = []
    for start, gaps, raw, as_integers in series:
        timestamps = [start]
        for gap in gaps:
            timestamps.append(timestamps[-1] + gap)
        n = len(timestamps)
        if as_integers:  # small integers take the delta path
            blobs.append(_chunk(timestamps, [float(x % 2**40 - 2**39) for x in raw[:n]]))
        else:
            blobs.append(_raw_chunk(timestamps, raw[:n]))
    _assert_same(blobs)


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        pytest.param(b"", "not a version-1 chunk", id="empty"),
        pytest.param(b"\x02\x00\x01\x00", "not a version-1 chunk", id="unknown-version"),
        pytest.param(b"\x01\x00\x05\x00garbage", "corrupt chunk body", id="corrupt-body"),
        pytest.param(b"\x01\x00\xff\xff", "truncated varint", id="truncated-varint"),
        pytest.param(b"\x01\x00\x00\x00", "empty chunk", id="zero-samples"),
        pytest.param(
            _chunk(_STEADY[:3], [1.0, 2.0, 3.0])[:-2], "corrupt chunk body", id="truncated-body"
        ),
        pytest.param(
            b"\x01\x00\x02" + _chunk(_STEADY[:3], [1.5, 2.5, 3.5])[3:],
            "does not match its sample count",
            id="count-disagrees-with-body",
        ),
    ],
)
def test_both_refuse_corrupt_chunks(blob: bytes, message: str) -> None:
    good = _chunk(_STEADY, _COUNTER)
    for decode in (decode_many_numpy, decode_many_native):
        with pytest.raises(ChunkError, match=message):
            decode([good, blob])


def _many(count: int) -> list[bytes]:
    """Enough chunks of varied shapes that the native decoder splits them over threads."""
    rng = random.Random(5)
    blobs = []
    for i in range(count):
        n = rng.choice((1, 2, 7, 120))
        start = T0 + i * 1_000_000
        timestamps = [start + 15_000 * k + rng.randint(-3, 3) for k in range(n)]
        values = [float(k * 3) if i % 2 else rng.uniform(-1, 1) for k in range(n)]
        blobs.append(_chunk(timestamps, values))
    return blobs


def test_native_matches_numpy_on_a_threaded_batch() -> None:
    _assert_same(_many(3000))


def test_first_corrupt_chunk_is_reported_in_a_threaded_batch() -> None:
    blobs = _many(3000)
    blobs[300] = blobs[300][:-3]  # truncated body
    blobs[2900] = b"\x01\x00\x02" + _chunk(_STEADY[:3], [1.5, 2.5, 3.5])[3:]  # wrong count
    for decode in (decode_many_numpy, decode_many_native):
        with pytest.raises(ChunkError, match="corrupt chunk body"):
            decode(blobs)


def test_select_decoder() -> None:
    blobs = [_chunk(_JITTER, _GAUGE)]
    previous = chunks.select_decoder("numpy")
    try:
        numpy_result = chunks.decode_many(blobs)
        assert chunks.select_decoder("native") == "numpy"
        assert all(
            np.array_equal(a, b)
            for a, b in zip(numpy_result, chunks.decode_many(blobs), strict=True)
        )
        with pytest.raises(ValueError, match="unknown chunk decoder 'rust'"):
            chunks.select_decoder("rust")
    finally:
        chunks.select_decoder(previous)


def test_native_is_the_default_where_installed() -> None:
    assert next(iter(chunks.DECODERS)) == "native"

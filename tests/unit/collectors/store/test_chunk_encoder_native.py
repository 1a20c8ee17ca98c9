"""The native chunk encoder against the Python one: the same chunk bytes for the same samples.

Compaction rewrites a block idempotently only if a chunk's bytes do not depend on which
encoder made them (collectors with and without ``meshfed_native`` may share one store), so
every case encodes with both and compares bit for bit. Where a Rust toolchain exists
``make setup`` builds the native module, so its absence there is a failure, not a skip.
"""

from __future__ import annotations

import math
import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.store import chunks
from collectors.store.chunks import STALE_NAN, bits_from_values, chunk_planes_py, decode_chunk
from tests.helpers.native import require_native

T0 = 1_700_000_000_000
_RNG = random.Random(5)


@pytest.fixture(autouse=True)
def _native_installed() -> None:
    require_native(
        chunks._native_planes is not None, what="chunk_planes", fallback="the Python encoder"
    )


def _native(timestamps: list[int], value_bits: bytes) -> tuple[int, bytes] | None:
    assert chunks._native_planes is not None
    return chunks._native_planes(timestamps, value_bits)


def _raw(values: list[int]) -> bytes:
    return b"".join(v.to_bytes(8, "big") for v in values)


_STEADY = [T0 + 15_000 * i for i in range(120)]
_JITTER = [T0 + 15_000 * i + _RNG.randint(-40, 40) for i in range(120)]
_WIDE = [T0, T0 + 1, T0 + 2**33, T0 + 2**33 + 7, T0 + 2**40]
_NEGATIVE = [-(2**62), -5, 0, 3, 2**61]


@pytest.mark.parametrize(
    ("timestamps", "value_bits"),
    [
        pytest.param(_STEADY, bits_from_values([10.0 * i for i in range(120)]), id="counter"),
        pytest.param(
            _JITTER, bits_from_values([_RNG.uniform(-1e6, 1e6) for _ in range(120)]), id="gauge"
        ),
        pytest.param(_WIDE, bits_from_values([1.0, 2.0, 3.0, 4.0, 5.0]), id="8-byte-lanes"),
        pytest.param(_NEGATIVE, bits_from_values([0.5, -1.0, 2.0, 3.0, 4.0]), id="negative-ts"),
        pytest.param([T0], bits_from_values([42.0]), id="one-sample"),
        pytest.param(
            _STEADY[:8],
            bits_from_values([STALE_NAN, 1.5, math.nan, -0.0, math.inf, -math.inf, 5e-324, 0.0]),
            id="stale-nan-inf-signed-zero",
        ),
        pytest.param(_STEADY[:2], bits_from_values([1.0, -0.0]), id="negative-zero-not-integer"),
        pytest.param(
            _STEADY[:3], bits_from_values([2.0**53 - 1, -(2.0**53) + 1, 0.0]), id="largest-ints"
        ),
        pytest.param(_STEADY[:2], bits_from_values([1.0, 2.0**53]), id="2-pow-53-not-integer"),
        pytest.param(
            _STEADY[:4],
            _raw([0x7FF8_0000_DEAD_BEEF, 0xFFF0_0000_0000_0001, 0, 2**64 - 1]),
            id="nan-payloads",
        ),
    ],
)
def test_native_planes_match_python(timestamps: list[int], value_bits: bytes) -> None:
    assert _native(timestamps, value_bits) == chunk_planes_py(timestamps, value_bits)
    blob = chunks.encode_chunk(timestamps, value_bits)
    assert decode_chunk(blob) == (timestamps, value_bits)


@pytest.mark.parametrize(
    ("timestamps", "value_bits"),
    [
        pytest.param([], b"", id="no-samples"),
        pytest.param([1, 2], b"\0" * 15, id="short-values"),
        pytest.param([-(2**63), 2**63 - 1, -(2**63)], b"\0" * 24, id="dod-beyond-64-bits"),
    ],
)
def test_native_leaves_judgement_to_python(timestamps: list[int], value_bits: bytes) -> None:
    assert _native(timestamps, value_bits) is None


def test_timestamp_beyond_int64_fails_as_in_python() -> None:
    timestamps, value_bits = [0, 2**64], bits_from_values([1.0, 2.0])
    with pytest.raises(struct.error):
        chunk_planes_py(timestamps, value_bits)
    with pytest.raises(struct.error):
        chunks.encode_chunk(timestamps, value_bits)


_SAMPLES = st.lists(
    st.tuples(st.integers(1, 2**40), st.integers(0, 2**64 - 1)), min_size=1, max_size=300
)


@settings(max_examples=300, deadline=None)
@given(samples=_SAMPLES, start=st.integers(-(2**50), 2**50), integers=st.booleans())
def test_any_increasing_chunk_encodes_the_same(
    samples: list[tuple[int, int]], start: int, integers: bool
) -> None:
    timestamps, t = [], start
    for step, _ in samples:
        t += step
        timestamps.append(t)
    raw = [bits % 2**40 for _, bits in samples] if integers else [bits for _, bits in samples]
    value_bits = bits_from_values([float(v) for v in raw]) if integers else _raw(raw)
    assert _native(timestamps, value_bits) == chunk_planes_py(timestamps, value_bits)

"""Assembling a read's chunks and heads into per-series columns, cut to segment windows.

Checked against the plain way (decode each part alone, append its head, binary-search the
window): same samples, same per-part counts, on parts that are whole, cut at either end,
empty, head-only or chunk-only, with NaN payloads kept bit for bit.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from collectors.store.chunks import (
    STALE_NAN,
    bits_from_values,
    decode_chunk,
    encode_chunk,
    encode_records,
)
from collectors.store.metrics_columns import Part, assemble

T0 = 1_700_000_000_000


def _series(start: int, n: int, step: int = 5_000) -> tuple[list[int], bytes]:
    timestamps = [start + step * i for i in range(n)]
    values = [STALE_NAN if i % 17 == 3 else i * 1.5 for i in range(n)]
    return timestamps, bits_from_values(values)


def _stored(start: int, n: int, per_chunk: int, head: int) -> tuple[list[bytes], bytes]:
    """A series as the store keeps it: full chunks, then ``head`` samples as head records."""
    timestamps, bits = _series(start, n)
    cut = n - head
    blobs = [
        encode_chunk(
            timestamps[i : min(i + per_chunk, cut)], bits[8 * i : 8 * min(i + per_chunk, cut)]
        )
        for i in range(0, cut, per_chunk)
    ]
    return blobs, encode_records(timestamps[cut:], bits[8 * cut :])


def _plain(blobs: list[bytes], part: Part) -> tuple[list[int], bytes]:
    timestamps: list[int] = []
    bits = b""
    for blob in blobs[part.first_blob : part.first_blob + part.blob_count]:
        ts, b = decode_chunk(blob)
        timestamps += ts
        bits += b
    for i in range(0, len(part.head), 16):
        timestamps.append(int.from_bytes(part.head[i : i + 8], "big", signed=True))
        bits += part.head[i + 8 : i + 16]
    a, b = np.searchsorted(np.array(timestamps, dtype=np.int64), (part.start_ms, part.end_ms + 1))
    return timestamps[a:b], bits[8 * a : 8 * b]


# (start, samples, samples per chunk, head samples, window start, window end) per part
CASES = {
    "whole": [(T0, 300, 120, 60, T0 - 1, T0 + 10_000_000)],
    "cut-both-ends": [(T0, 300, 120, 60, T0 + 12_000, T0 + 1_000_000)],
    "window-inside-head": [(T0, 300, 120, 60, T0 + 5_000 * 250, T0 + 5_000 * 255)],
    "empty-window": [(T0, 300, 120, 60, T0 - 100, T0 - 1)],
    "head-only-and-chunk-only": [
        (T0, 30, 120, 30, T0, T0 + 10_000_000),
        (T0 + 7, 240, 120, 0, T0, T0 + 10_000_000),
    ],
    "many-parts-mixed": [
        (T0, 300, 120, 60, T0 - 1, T0 + 10_000_000),
        (T0, 0, 120, 0, T0, T0 + 1),
        (T0 + 3, 500, 100, 0, T0 + 300_000, T0 + 2_000_000),
        (T0, 10, 120, 10, T0 + 5_000, T0 + 5_000),
        (T0 - 50_000, 120, 120, 0, T0 - 1_000_000, T0 + 1_000_000),
    ],
}


@pytest.mark.parametrize("case", [pytest.param(v, id=k) for k, v in CASES.items()])
def test_assemble_matches_plain_decoding(
    case: list[tuple[int, int, int, int, int, int]],
) -> None:
    blobs: list[bytes] = []
    parts: list[Part] = []
    for start, n, per_chunk, head, low, high in case:
        chunk_blobs, head_records = _stored(start, n, per_chunk, head)
        parts.append(Part(len(blobs), len(chunk_blobs), head_records, low, high))
        blobs += chunk_blobs
    timestamps, bits, kept = assemble(blobs, parts)
    want = [_plain(blobs, p) for p in parts]
    assert kept == [len(ts) for ts, _ in want]
    assert timestamps.tolist() == [t for ts, _ in want for t in ts]
    assert bits.astype(">u8").tobytes() == b"".join(b for _, b in want)
    assert timestamps.flags.writeable and bits.flags.writeable


def test_assemble_nothing() -> None:
    timestamps, bits, kept = assemble([], [])
    assert (len(timestamps), len(bits), kept) == (0, 0, [])


@pytest.mark.parametrize("seed", [pytest.param(s, id=f"seed-{s}") for s in range(8)])
def test_assemble_random_parts_and_windows(seed: int) -> None:
    rng = random.Random(seed)
    blobs: list[bytes] = []
    parts: list[Part] = []
    for _ in range(rng.randint(1, 40)):
        n = rng.randint(0, 400)
        head = rng.randint(0, min(n, 130))
        start = T0 + rng.randint(-100_000, 100_000)
        chunk_blobs, head_records = _stored(start, n, rng.choice((1, 7, 120)), head)
        low = start + rng.randint(-20_000, 5_000 * n + 20_000)
        high = low + rng.randint(-5_000, 5_000 * n)
        parts.append(Part(len(blobs), len(chunk_blobs), head_records, low, high))
        blobs += chunk_blobs
    timestamps, bits, kept = assemble(blobs, parts)
    want = [_plain(blobs, p) for p in parts]
    assert kept == [len(ts) for ts, _ in want]
    assert timestamps.tolist() == [t for ts, _ in want for t in ts]
    assert bits.astype(">u8").tobytes() == b"".join(b for _, b in want)

"""Decoded samples of a read, as two columns: the pure step between Redis replies and series.

Why this shape: a query over a thousand series used to decode, concatenate and cut every
series on its own, a dozen numpy calls each, which cost as much as decoding itself. Here
every chunk and head of the read is decoded in one batch, each segment's window is found in
every series by one vectorized binary search, and the samples inside are copied once into
one timestamp and one value-bits column, laid out so that each series is a contiguous range
of them. Callers slice the columns into per-series views.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from collectors._core.errors import ChunkError
from collectors.store.chunks import RECORD_SIZE, decode_many, decode_records


class Part(NamedTuple):
    """One series' samples in one segment: ``blob_count`` blobs from ``first_blob``, then
    ``head`` (head records, possibly empty), cut to ``[start_ms, end_ms]``."""

    first_blob: int
    blob_count: int
    head: bytes
    start_ms: int
    end_ms: int


def assemble(
    blobs: Sequence[bytes], parts: Sequence[Part]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint64], list[int]]:
    """Timestamps and value bits (native uint64) of every part, end to end in ``parts``
    order, and how many samples each part kept. The columns are fresh, writable arrays."""
    if any(len(p.head) % RECORD_SIZE for p in parts):
        raise ChunkError("head length is not a multiple of 16 bytes")
    chunk_ts, chunk_bits, counts = decode_many(blobs)
    head_ts, head_bits = decode_records(b"".join(p.head for p in parts))
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    first = np.fromiter((p.first_blob for p in parts), dtype=np.int64, count=len(parts))
    count = np.fromiter((p.blob_count for p in parts), dtype=np.int64, count=len(parts))
    sizes = np.fromiter((len(p.head) for p in parts), dtype=np.int64, count=len(parts))
    head_hi = np.cumsum(sizes // RECORD_SIZE)
    lows = np.fromiter((p.start_ms for p in parts), dtype=np.int64, count=len(parts))
    highs = np.fromiter((p.end_ms for p in parts), dtype=np.int64, count=len(parts))
    # A part is its chunks' samples then its head's, all in time order, so the samples in
    # its window are one run of each: found by binary search, copied once.
    c_lo, c_hi = _window(chunk_ts, offsets[first], offsets[first + count], lows, highs)
    h_lo, h_hi = _window(head_ts, head_hi - sizes // RECORD_SIZE, head_hi, lows, highs)
    spans = list(zip(c_lo.tolist(), c_hi.tolist(), h_lo.tolist(), h_hi.tolist(), strict=True))
    ts_pieces = [np.zeros(0, dtype=np.int64)]
    bit_pieces = [np.zeros(0, dtype=np.uint64)]
    for a, b, c, d in spans:
        ts_pieces += (chunk_ts[a:b], head_ts[c:d])
        bit_pieces += (chunk_bits[a:b], head_bits[c:d])
    kept = [b - a + d - c for a, b, c, d in spans]
    return np.concatenate(ts_pieces), np.concatenate(bit_pieces), kept


def _window(
    timestamps: npt.NDArray[np.int64],
    lo: npt.NDArray[np.int64],
    hi: npt.NDArray[np.int64],
    lows: npt.NDArray[np.int64],
    highs: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Per sorted run ``[lo, hi)`` of ``timestamps``: the sub-run inside ``[low, high]``."""
    start = _first_after(timestamps, lo, hi, lows, strict=False)
    end = _first_after(timestamps, start, hi, highs, strict=True)
    return start, end


def _first_after(
    timestamps: npt.NDArray[np.int64],
    lo: npt.NDArray[np.int64],
    hi: npt.NDArray[np.int64],
    bound: npt.NDArray[np.int64],
    *,
    strict: bool,
) -> npt.NDArray[np.int64]:
    """Per sorted run ``[lo, hi)``: the first index whose time is >= ``bound`` (> when
    ``strict``), or ``hi``. Every run's binary search at once: a dozen numpy passes over
    one value per run, instead of one Python-level search per run."""
    lo, hi = lo.copy(), hi.copy()
    last = len(timestamps) - 1
    while True:
        active = lo < hi
        if not active.any():
            return lo
        mid = (lo + hi) >> 1
        t = timestamps[np.minimum(mid, last)]
        before = active & ((t <= bound) if strict else (t < bound))
        lo = np.where(before, mid + 1, lo)
        hi = np.where(active & ~before, mid, hi)

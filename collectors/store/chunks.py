"""Compressed sample chunks: the pure codec behind the metrics store (no I/O).

Why this shape: the store keeps many samples per Redis value, and Python must encode and
decode them fast. So every per-sample step runs in native code. On the write side
``meshfed_native.chunk_planes`` (Rust) builds a chunk's planes where it is installed;
otherwise (the reference, same bytes) ``struct`` packs the columns, big-integer
arithmetic turns whole columns into XOR/delta streams in one operation (lanes never carry
because deltas of sorted timestamps are non-negative and XOR has no carry), and byte planes
are split and merged with strided slices (the "shuffle" of Blosc). Either way Python's
``zlib`` squeezes the mostly-zero planes. The read side (``decode_many``) decodes the
thousands of chunks of a query in one call of the native decoder (``meshfed_native``, Rust,
built by ``make setup`` from ``native/``): one inflate and one pass per chunk with the GIL
released, written into buffers numpy wraps without a copy. Where no Rust toolchain built
it, the numpy decoder below runs instead, with the same results (a unit test runs both on
the same chunks and compares them bit for bit): chunks of the same shape are unshuffled,
un-delta'd and un-XOR'd together as the rows of one 2-D array. Values round-trip bit for
bit, NaN payloads included (Prometheus's stale marker ``0x7ff0000000000002``), because no
value is ever converted. See docs/adr/0015-native-chunk-decoding.md. ``split_head`` cuts a
series' head records (16 bytes each) into chunks: the store's cut, pure like the rest.

Chunk layout (version 1)::

    byte     version (1)
    byte     flags: bit 0 = timestamp lanes are 8 bytes (else 4);
                    bit 1 = values are integers stored as deltas (else XOR of bits)
    varint   n (samples, >= 1)
    zigzag   t0 (first timestamp, ms)
    rest     raw DEFLATE of: timestamp planes | value planes

Timestamp lanes hold the zigzag-encoded delta-of-delta of timestamps 1..n-1 as unsigned
big-endian integers (``d_0`` counts as 0, so the first lane is the first delta). Value lanes
hold ``bits(v_i) XOR bits(v_{i-1})`` (``v_{-1}`` counts as 0) or, when every value is an exact
integer below 2**53 (counters, most gauges), the zigzag deltas of those integers. A plane is
byte ``k`` of every lane.

Head records (the uncompressed tail of a series, appended by a Lua script) are 16 bytes:
``>q`` timestamp then the value's 8 IEEE-754 bytes, big-endian.
"""

from __future__ import annotations

import contextlib
import struct
import zlib
from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any

import numpy as np
import numpy.typing as npt

from collectors._core.errors import ChunkError

_native: Any
try:
    import meshfed_native as _native  # optional, built by make setup
except ImportError:  # no Rust toolchain where this was installed: numpy / Python run
    _native = None
_native_decode: Callable[[Sequence[bytes]], tuple[bytes, bytes, bytes]] | None = getattr(
    _native, "decode_many", None
)
_native_planes: Callable[[Sequence[int], bytes], tuple[int, bytes] | None] | None = getattr(
    _native, "chunk_planes", None
)
"""``None`` also where ``meshfed_native`` was built before it had the encoder."""


def native_function(name: str) -> Any:
    """``meshfed_native.<name>``; ``None`` where the module, or a build with that function,
    is not installed (the one place that imports the optional module)."""
    return getattr(_native, name, None)


VERSION = 1
RECORD_SIZE = 16
"""Bytes of one head record: 8 timestamp bytes, 8 value bytes (both big-endian)."""
STALE_NAN_BITS = 0x7FF0000000000002
"""Prometheus's stale marker: a NaN with this exact bit pattern."""
STALE_NAN: float = struct.unpack(">d", STALE_NAN_BITS.to_bytes(8, "big"))[0]

_FLAG_WIDE = 1
_FLAG_INTEGERS = 2
_UINT32_MAX = 2**32 - 1
_INT_EXACT = 2.0**53
_ZLIB_LEVEL = 6


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = 0
    shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ChunkError("truncated varint in chunk header")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _zigzag(value: int) -> int:
    return value * 2 if value >= 0 else -value * 2 - 1


def _unzigzag(value: int) -> int:
    return value >> 1 if value % 2 == 0 else -(value >> 1) - 1


def _split_planes(lanes: bytes, width: int) -> bytes:
    return b"".join(lanes[k::width] for k in range(width))


def _merge_planes(planes: bytes, width: int, count: int) -> bytes:
    out = bytearray(width * count)
    for k in range(width):
        out[k::width] = planes[k * count : (k + 1) * count]
    return bytes(out)


def _zigzags(values: Sequence[int]) -> list[int]:
    return [(v << 1) ^ (v >> 63) for v in values]


def _integer_values(value_bits: bytes, n: int) -> list[int] | None:
    """The values as ints when every one is an exact integer below 2**53 (not -0.0)."""
    floats = struct.unpack(f">{n}d", value_bits)
    if not all(v.is_integer() and -_INT_EXACT < v < _INT_EXACT for v in floats):
        return None
    ints = [int(v) for v in floats]
    return ints if struct.pack(f">{n}d", *ints) == value_bits else None


def encode_chunk(timestamps: Sequence[int], value_bits: bytes) -> bytes:
    """Compress ``n`` strictly increasing timestamps and their ``8 * n`` big-endian value bytes.

    Values are passed as raw IEEE-754 bytes (``struct.pack(">nd", ...)`` or head records)
    so that NaN payloads never pass through a float conversion. The planes come from
    ``meshfed_native`` when it is installed (the per-sample work of a head cut, about a fifth
    of a busy collector's CPU in Python) and from :func:`chunk_planes_py` otherwise; both
    give the same bytes, and the header and deflate are the same code either way, so a
    chunk's bytes never depend on which one ran.
    """
    n = len(timestamps)
    if n == 0 or len(value_bits) != 8 * n:
        raise ValueError("a chunk needs n >= 1 timestamps and exactly 8 * n value bytes")
    planes = None
    if _native_planes is not None:
        with contextlib.suppress(OverflowError):  # a timestamp beyond int64: Python judges it
            planes = _native_planes(timestamps, value_bits)
    flags, body = planes if planes is not None else chunk_planes_py(timestamps, value_bits)
    header = bytes((VERSION, flags)) + _varint(n) + _varint(_zigzag(timestamps[0]))
    return header + zlib.compress(body, _ZLIB_LEVEL, wbits=-15)


def chunk_planes_py(timestamps: Sequence[int], value_bits: bytes) -> tuple[int, bytes]:
    """A chunk's flags and uncompressed body (timestamp planes, then value planes).

    The reference for the native encoder, and what runs where it is not built.
    """
    n = len(timestamps)
    deltas = [b - a for a, b in pairwise(timestamps)]
    dods = _zigzags([b - a for a, b in zip([0, *deltas], deltas, strict=False)])
    flags = 0
    if dods and max(dods) > _UINT32_MAX:
        flags |= _FLAG_WIDE
    width = 8 if flags & _FLAG_WIDE else 4
    ts_lanes = struct.pack(f">{len(dods)}{'Q' if width == 8 else 'I'}", *dods)
    ints = _integer_values(value_bits, n)
    if ints is not None:
        flags |= _FLAG_INTEGERS
        value_lanes = struct.pack(
            f">{n}Q", *_zigzags([b - a for a, b in zip([0, *ints], ints, strict=False)])
        )
    else:
        packed = int.from_bytes(value_bits, "big")
        value_lanes = (packed ^ (packed >> 64)).to_bytes(8 * n, "big")
    return flags, _split_planes(ts_lanes, width) + _split_planes(value_lanes, 8)


def _parse(blob: bytes) -> tuple[int, int, int, bytes]:
    """``(n, flags, t0, body)`` of one chunk, its body inflated and length-checked."""
    if len(blob) < 4 or blob[0] != VERSION:
        raise ChunkError("not a version-1 chunk")
    flags, n, pos = blob[1], blob[2], 3
    if n > 0x7F:
        n, pos = _read_varint(blob, 2)
    zt0, pos = _read_varint(blob, pos)
    if n == 0:
        raise ChunkError("empty chunk")
    width = 8 if flags & _FLAG_WIDE else 4
    try:
        body = zlib.decompress(blob[pos:], wbits=-15, bufsize=(width + 8) * n)
    except zlib.error as exc:
        raise ChunkError(f"corrupt chunk body: {exc}") from exc
    if len(body) != width * (n - 1) + 8 * n:
        raise ChunkError("chunk body length does not match its sample count")
    return n, flags, _unzigzag(zt0), body


def _unzigzag_lanes(lanes: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
    """Zigzag-decoded lanes (wrapping uint64 arithmetic, then read as int64)."""
    one = np.uint64(1)
    return ((lanes >> one) ^ (np.uint64(0) - (lanes & one))).view(np.int64)


def _lanes(planes: npt.NDArray[np.uint8], width: int, count: int) -> npt.NDArray[np.uint64]:
    """Rows of ``width`` byte planes of ``count`` big-endian lanes -> native uint64 lanes."""
    rows = planes.shape[0]
    # planes in reverse order make each lane's bytes little-endian: one copy, no byte swap
    little = planes.reshape(rows, width, count)[:, ::-1, :].transpose(0, 2, 1)
    merged = np.ascontiguousarray(little).view("<u8" if width == 8 else "<u4")
    return merged.reshape(rows, count).astype(np.uint64, copy=False)


def _decode_group(
    n: int, flags: int, t0s: list[int], bodies: list[bytes]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint64]]:
    """Chunks of one shape (same n and flags) decoded together: (rows, n) arrays."""
    rows = len(bodies)
    width = 8 if flags & _FLAG_WIDE else 4
    body = np.frombuffer(b"".join(bodies), dtype=np.uint8).reshape(rows, -1)
    ts_len = width * (n - 1)
    timestamps = np.empty((rows, n), dtype=np.int64)
    timestamps[:, 0] = t0s
    if n > 1:
        dods = _unzigzag_lanes(_lanes(body[:, :ts_len], width, n - 1))
        timestamps[:, 1:] = np.cumsum(np.cumsum(dods, axis=1), axis=1) + timestamps[:, :1]
    lanes = _lanes(body[:, ts_len:], 8, n)
    if flags & _FLAG_INTEGERS:
        ints = np.cumsum(_unzigzag_lanes(lanes), axis=1)
        return timestamps, ints.astype(np.float64).view(np.uint64)
    return timestamps, np.bitwise_xor.accumulate(lanes, axis=1)


Decoded = tuple[npt.NDArray[np.int64], npt.NDArray[np.uint64], npt.NDArray[np.int64]]
"""Concatenated timestamps, value bits (native uint64, bit-exact), each chunk's sample count."""


def decode_many_numpy(blobs: Sequence[bytes]) -> Decoded:
    """``decode_many`` in numpy: the fallback where ``meshfed_native`` is not installed."""
    parsed = [_parse(blob) for blob in blobs]
    counts = np.array([p[0] for p in parsed], dtype=np.int64)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, (n, flags, _t0, _body) in enumerate(parsed):
        groups.setdefault((n, flags), []).append(i)
    if not parsed:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint64), counts
    ts_rows: list[npt.NDArray[np.int64]] = [counts] * len(parsed)  # placeholders
    bit_rows: list[npt.NDArray[np.uint64]] = [counts.view(np.uint64)] * len(parsed)
    for (n, flags), members in groups.items():
        ts, vb = _decode_group(
            n, flags, [parsed[i][2] for i in members], [parsed[i][3] for i in members]
        )
        if len(groups) == 1:  # the usual case: full chunks of one kind, already in order
            return ts.ravel(), vb.ravel(), counts
        for j, i in enumerate(members):
            ts_rows[i], bit_rows[i] = ts[j], vb[j]
    return np.concatenate(ts_rows), np.concatenate(bit_rows), counts


def decode_many_native(blobs: Sequence[bytes]) -> Decoded:
    """``decode_many`` by ``meshfed_native``; the arrays are read-only views of its buffers."""
    if _native_decode is None:
        raise RuntimeError(
            "meshfed_native is not installed; build it with `make setup` (needs cargo)"
        )
    try:
        ts, bits, counts = _native_decode(blobs)
    except ValueError as exc:
        raise ChunkError(str(exc)) from exc
    return (
        np.frombuffer(ts, dtype=np.int64),
        np.frombuffer(bits, dtype=np.uint64),
        np.frombuffer(counts, dtype=np.int64),
    )


DECODERS: dict[str, Callable[[Sequence[bytes]], Decoded]] = {"numpy": decode_many_numpy}
"""The decoders installed here, by name; ``native`` first when it is."""
if _native_decode is not None:
    DECODERS = {"native": decode_many_native, **DECODERS}
_decoder = next(iter(DECODERS))


def select_decoder(name: str) -> str:
    """Make ``decode_many`` use decoder ``name`` (benchmarks compare them); returns the
    previous one's name."""
    global _decoder  # one process-wide choice, read on every call
    if name not in DECODERS:
        raise ValueError(f"unknown chunk decoder {name!r}; installed here: {sorted(DECODERS)}")
    previous, _decoder = _decoder, name
    return previous


def decode_many(blobs: Sequence[bytes]) -> Decoded:
    """Decode chunks in one go: concatenated timestamps, value bits (native uint64, bit-exact)
    and each chunk's sample count, in the order of ``blobs``. Corrupt chunks raise
    ``ChunkError``."""
    return DECODERS[_decoder](blobs)


_RECORD_DTYPE = np.dtype([("t", ">i8"), ("v", ">u8")])


def decode_records(records: bytes) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint64]]:
    """Timestamps and value bits (native) of head records, without a Python loop."""
    if len(records) % RECORD_SIZE:
        raise ChunkError("head length is not a multiple of 16 bytes")
    rec = np.frombuffer(records, dtype=_RECORD_DTYPE)
    return rec["t"].astype(np.int64), rec["v"].astype(np.uint64)


def decode_chunk(blob: bytes) -> tuple[list[int], bytes]:
    """The timestamps and the ``8 * n`` big-endian value bytes of a chunk."""
    timestamps, bits, _ = decode_many([blob])
    return timestamps.tolist(), bits.astype(">u8").tobytes()


def values_from_bits(value_bits: bytes) -> list[float]:
    """Floats from big-endian IEEE-754 bytes (bit-exact, NaN payloads kept)."""
    return list(struct.unpack(f">{len(value_bits) // 8}d", value_bits))


def bits_from_values(values: Sequence[float]) -> bytes:
    """Big-endian IEEE-754 bytes of ``values``."""
    return struct.pack(f">{len(values)}d", *values)


def encode_records(timestamps: Sequence[int], value_bits: bytes) -> bytes:
    """Head records (16 bytes each) for timestamps and their big-endian value bytes."""
    n = len(timestamps)
    ts_lanes = struct.pack(f">{n}q", *timestamps)
    return _merge_planes(_split_planes(ts_lanes, 8) + _split_planes(value_bits, 8), 16, n)


def split_records(records: bytes) -> tuple[list[int], bytes]:
    """Timestamps and value bytes of head records (the inverse of ``encode_records``).

    Every head cut starts here; numpy's strided field views take a quarter of the time of
    byte-plane slicing (3 against 12 us for a 120-record head).
    """
    if len(records) % RECORD_SIZE:
        raise ChunkError("head length is not a multiple of 16 bytes")
    rec = np.frombuffer(records, dtype=_RECORD_DTYPE)
    timestamps: list[int] = rec["t"].tolist()
    return timestamps, rec["v"].tobytes()


def split_head(
    head: bytes, *, max_samples: int, max_span_ms: int, force: bool
) -> tuple[int, list[tuple[int, bytes]]]:
    """Cut head records into chunks: (bytes consumed, [(first timestamp, chunk)]).

    A chunk holds at most ``max_samples`` samples spanning less than ``max_span_ms``. The
    last, partial chunk stays in the head unless ``force`` (an idle series).
    """
    timestamps, bits = split_records(head)
    n = len(timestamps)
    bounds: list[tuple[int, int]] = []
    start = 0
    if n and timestamps[-1] - timestamps[0] < max_span_ms:
        bounds = [(a, min(a + max_samples, n)) for a in range(0, n, max_samples)]
    else:
        for i in range(1, n + 1):
            if (
                i == n
                or i - start == max_samples
                or timestamps[i] - timestamps[start] >= max_span_ms
            ):
                bounds.append((start, i))
                start = i
    if bounds and not force:
        a, b = bounds[-1]
        if b - a < max_samples:
            bounds.pop()
    pieces = [
        (timestamps[a], encode_chunk(timestamps[a:b], bits[8 * a : 8 * b])) for a, b in bounds
    ]
    consumed = (bounds[-1][1] if bounds else 0) * RECORD_SIZE
    return consumed, pieces

"""Prometheus remote_write 0.1 request bodies, encoded by hand.

The ``WriteRequest`` protobuf has four small messages and snappy's block format allows a body
made only of literals, so tests need no generated code and no compression library (the
benchmark compresses the same bytes with real snappy, as Prometheus does).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence

HEADERS = {
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}
"""The headers Prometheus sends with every remote_write request."""

Series = tuple[Mapping[str, str], Sequence[tuple[int, float]]]
"""Labels (``__name__`` included) and (timestamp ms, value) samples."""


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def encode_write_request(series: Sequence[Series]) -> bytes:
    """``prometheus.WriteRequest`` protobuf bytes (labels sorted by name, as Prometheus sends)."""
    body = bytearray()
    for labels, samples in series:
        ts = bytearray()
        for name, value in sorted(labels.items()):
            ts += _field(1, _field(1, name.encode()) + _field(2, value.encode()))
        for t, v in samples:
            sample = b"\x09" + struct.pack("<d", v) + b"\x10" + _varint(t)
            ts += _field(2, sample)
        body += _field(1, bytes(ts))
    return bytes(body)


def snappy_block(data: bytes) -> bytes:
    """Snappy block format made of literal elements only (valid, uncompressed)."""
    out = bytearray(_varint(len(data)))
    for i in range(0, len(data), 65536):
        chunk = data[i : i + 65536]
        out.append(61 << 2)
        out += struct.pack("<H", len(chunk) - 1)
        out += chunk
    return bytes(out)

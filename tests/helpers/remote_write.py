"""Prometheus remote_write 0.1 request bodies, encoded by hand.

The ``WriteRequest`` encoder is the load generator's (:mod:`meshfed.loadgen.telemetry`); snappy's
block format allows a body made only of literals, so tests need no compression library here
(the load generator and the benchmark compress the same bytes with real snappy, as Prometheus
does).
"""

from __future__ import annotations

import struct

import cramjam

from collectors.receivers.prometheus.protocol.remote_write_proto import WriteRequest

# one encoder for the load generator and the tests (re-exported here for the tests)
from meshfed.loadgen.telemetry import REMOTE_WRITE_HEADERS, Series, encode_write_request

__all__ = [
    "HEADERS",
    "Series",
    "encode_write_request",
    "proto_write_request",
    "snappy_block",
    "snappy_compress",
]

HEADERS = REMOTE_WRITE_HEADERS
"""The headers Prometheus sends with every remote_write request."""


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


def snappy_block(data: bytes) -> bytes:
    """Snappy block format made of literal elements only (valid, uncompressed)."""
    out = bytearray(_varint(len(data)))
    for i in range(0, len(data), 65536):
        chunk = data[i : i + 65536]
        out.append(61 << 2)
        out += struct.pack("<H", len(chunk) - 1)
        out += chunk
    return bytes(out)


def proto_write_request(
    series: list[tuple[list[tuple[str, str]], list[tuple[int, float]]]],
) -> bytes:
    """A ``WriteRequest`` built with the protobuf classes: per series its label pairs (in the
    order given, so tests can send them unsorted or repeated) and (timestamp, value) samples."""
    req = WriteRequest()
    for labels, points in series:
        ts = req.timeseries.add()
        for name, value in labels:
            ts.labels.add(name=name, value=value)
        for t, v in points:
            ts.samples.add(timestamp=t, value=v)
    return bytes(req.SerializeToString())


def snappy_compress(data: bytes) -> bytes:
    """``data`` as a real snappy block (compressed, as Prometheus sends it)."""
    return bytes(cramjam.snappy.compress_raw(data))

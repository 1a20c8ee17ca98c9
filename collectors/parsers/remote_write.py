"""Prometheus remote_write 1.0 bodies -> samples and metadata (pure: bytes in, records out).

The body is a snappy *block* whose first bytes are a varint holding the uncompressed
length. That length is read and checked against the limit **before** anything is
decompressed, so a tiny body declaring gigabytes is refused without allocating (S1). The
protobuf is then parsed by protobuf's C decoder and every series validated as the spec
demands (labels sorted by name, unique, non-empty names, ``__name__`` present). Every
failure is a ``PermanentError``; an over-limit body is a ``LimitExceededError`` (413).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import cramjam
from google.protobuf.message import DecodeError

from collectors.errors import LimitExceededError, PermanentError
from collectors.model import METRIC_NAME_LABEL, MetricMetadata, MetricType, Sample
from collectors.parsers.remote_write_proto import METADATA_TYPES, WriteRequest

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_MAX_VARINT_BYTES = 5  # snappy's length is a uint32
_METRIC_TYPES = {t.value: t for t in MetricType}


@dataclass(frozen=True, slots=True)
class WriteBatch:
    """One decoded request: its samples (label order kept) and metadata."""

    samples: list[Sample]
    metadata: list[MetricMetadata]
    series: int
    """Time series in the request (some may carry no samples)."""


def snappy_uncompressed_length(body: bytes) -> int:
    """The uncompressed length a snappy block declares (its leading uvarint)."""
    result = 0
    for i, byte in enumerate(body[:_MAX_VARINT_BYTES]):
        result |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            if result > 0xFFFFFFFF:
                break
            return result
    raise PermanentError("invalid snappy block: bad uncompressed-length header")


def decompress(body: bytes, *, max_decompressed_bytes: int) -> bytes:
    """Decode a snappy block, refusing (413) before decoding when it declares too much."""
    declared = snappy_uncompressed_length(body)
    if declared > max_decompressed_bytes:
        raise LimitExceededError(
            f"snappy block declares {declared} bytes uncompressed; the limit is"
            f" {max_decompressed_bytes} (remote_write.max_decompressed_bytes)"
        )
    try:
        out = cramjam.snappy.decompress_raw(body)
    except Exception as e:  # cramjam raises its own DecompressionError (a ValueError-like)
        raise PermanentError(f"invalid snappy block: {e}") from e
    data = bytes(out)
    if len(data) != declared:
        raise PermanentError("invalid snappy block: length differs from its header")
    return data


def parse_write_request(data: bytes) -> WriteBatch:
    """Decode and validate ``prometheus.WriteRequest`` protobuf bytes."""
    try:
        request = WriteRequest.FromString(data)
    except (DecodeError, ValueError, RuntimeError) as e:
        raise PermanentError(f"invalid WriteRequest protobuf: {e}") from e
    samples: list[Sample] = []
    append = samples.append
    for series in request.timeseries:
        name, labels = _series_labels(series.labels)
        for point in series.samples:
            append(Sample(name, labels, point.timestamp, point.value))
    metadata = [_metadata(m) for m in request.metadata]
    return WriteBatch(samples=samples, metadata=metadata, series=len(request.timeseries))


def decode(body: bytes, *, max_decompressed_bytes: int) -> WriteBatch:
    """A whole request body: snappy block, then protobuf."""
    return parse_write_request(decompress(body, max_decompressed_bytes=max_decompressed_bytes))


def _series_labels(pairs: Any) -> tuple[str, dict[str, str]]:
    labels: dict[str, str] = {}
    name = ""
    previous = ""
    for i, label in enumerate(pairs):
        key: str = label.name
        if i and key <= previous:
            problem = "duplicate" if key == previous else "unsorted"
            raise PermanentError(f"{problem} label name {key!r}: labels must be sorted, unique")
        previous = key
        if key == METRIC_NAME_LABEL:
            name = label.value
            continue
        if not _LABEL_NAME.fullmatch(key):
            raise PermanentError(f"invalid label name {key!r}")
        if label.value:
            labels[key] = label.value
    if not name:
        raise PermanentError(f"series without a __name__ label: {labels}")
    if not _METRIC_NAME.fullmatch(name):
        raise PermanentError(f"invalid metric name {name!r}")
    return name, labels


def _metadata(m: Any) -> MetricMetadata:
    family: str = m.metric_family_name
    if not family:
        raise PermanentError("metadata without metric_family_name")
    kind = METADATA_TYPES.get(m.type, "unknown")
    return MetricMetadata(
        name=family,
        type=_METRIC_TYPES.get(kind, MetricType.UNKNOWN),
        help=m.help,
        unit=m.unit,
    )


__all__ = [
    "WriteBatch",
    "decode",
    "decompress",
    "parse_write_request",
    "snappy_uncompressed_length",
]

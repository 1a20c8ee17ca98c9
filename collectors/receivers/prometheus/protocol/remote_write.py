"""Prometheus remote_write 1.0 bodies -> samples and metadata (pure: bytes in, records out).

The body is a snappy *block* whose first bytes are a varint holding the uncompressed
length. That length is read and checked against the limit **before** anything is
decompressed, so a tiny body declaring gigabytes is refused without allocating (S1). The
protobuf's outer message is parsed by protobuf's C decoder and every series validated as
the spec demands (labels sorted by name, unique, non-empty names, ``__name__`` present).
Every failure is a ``PermanentError``; an over-limit body is a ``LimitExceededError`` (413).

Samples come out as a columnar :class:`collectors._core.series_batch.SeriesBatch`, one interned
``SeriesLabels`` per series: a ``SeriesDecoder`` recognises a label block it validated
before by its raw bytes, which is what makes ingest fast (a sender repeats its series'
labels in every request).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import Any

import cramjam
from google.protobuf.message import DecodeError

from collectors._core.errors import LimitExceededError, PermanentError
from collectors._core.model import METRIC_NAME_LABEL, MetricMetadata, MetricType, Sample
from collectors._core.series_batch import SeriesBatch, SeriesLabels
from collectors.receivers.prometheus.protocol import remote_write_native
from collectors.receivers.prometheus.protocol.remote_write_proto import (
    METADATA_TYPES,
    RawWriteRequest,
    TimeSeries,
)

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_MAX_VARINT_BYTES = 5  # snappy's length is a uint32
_METRIC_TYPES = {t.value: t for t in MetricType}
_LABELS_TAG = 0x0A  # TimeSeries.labels: field 1, length-delimited
_SAMPLES_TAG = 0x12  # TimeSeries.samples: field 2, length-delimited
_VALUE_TAG = 0x09  # Sample.value: field 1, 64-bit
_TIMESTAMP_TAG = 0x10  # Sample.timestamp: field 2, varint
_unpack_double = struct.Struct("<d").unpack_from
LABEL_CACHE_MAX = 100_000
"""Label sets a ``SeriesDecoder`` remembers by raw bytes; cleared when full."""


@dataclass(frozen=True, slots=True)
class WriteBatch:
    """One decoded request: its samples as a columnar batch (label order kept) and metadata."""

    batch: SeriesBatch
    metadata: list[MetricMetadata]
    series: int
    """Time series in the request (some may carry no samples)."""

    @property
    def samples(self) -> list[Sample]:
        """The samples as records (built on demand; the receiver uses ``batch``)."""
        return self.batch.to_samples()


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
    """Decode and validate ``prometheus.WriteRequest`` protobuf bytes (no label cache)."""
    return SeriesDecoder(max_cached_series=0).parse(data)


def decode(body: bytes, *, max_decompressed_bytes: int) -> WriteBatch:
    """A whole request body: snappy block, then protobuf."""
    return parse_write_request(decompress(body, max_decompressed_bytes=max_decompressed_bytes))


class SeriesDecoder:
    """Parses requests, remembering validated label sets by their raw bytes (bounded).

    A sender repeats every series' labels in every request, byte for byte; a known label
    block is looked up instead of decoded and validated again. Series in the layout every
    Prometheus writes (labels, then samples of ``value`` then ``timestamp``) are read here
    with a few byte reads; anything else (other field order, exemplars, histograms, long
    labels) goes through protobuf's decoder, with the same validation.
    """

    def __init__(self, *, max_cached_series: int = LABEL_CACHE_MAX) -> None:
        self._labels: dict[bytes, SeriesLabels] = {}
        self._max = max_cached_series
        self._blocks = remote_write_native.label_blocks(max_cached_series)
        """The native cache of validated blocks (``None`` without ``meshfed_native``)."""

    def decode(self, body: bytes, *, max_decompressed_bytes: int) -> WriteBatch:
        """A whole request body: snappy block, then protobuf."""
        return self.parse(decompress(body, max_decompressed_bytes=max_decompressed_bytes))

    def parse(self, data: bytes) -> WriteBatch:
        """Decode and validate ``prometheus.WriteRequest`` protobuf bytes."""
        if self._blocks is not None:
            fast = self._parse_native(data)
            if fast is not None:
                return fast
        try:
            request = RawWriteRequest.FromString(data)
            raw_series: list[bytes] = list(request.timeseries)
            metadata = [_metadata(m) for m in request.metadata]
        except (DecodeError, ValueError, RuntimeError) as e:
            raise PermanentError(f"invalid WriteRequest protobuf: {e}") from e
        # Samples are gathered per series object: a sender that repeats a series in one
        # request (Prometheus sends one TimeSeries per sample) yields one run per series.
        runs: dict[SeriesLabels, tuple[list[int], list[float]]] = {}
        stamps: dict[bytes, int] = {}  # raw timestamp varint -> value, for this request
        known = self._labels
        for raw in raw_series:
            # Inline fast path: known labels, then one sample (value, timestamp seen before).
            end = len(raw)
            pos = 0
            while pos < end - 1 and raw[pos] == _LABELS_TAG and raw[pos + 1] < 0x80:
                pos += 2 + raw[pos + 1]
            ref = known.get(raw[:pos])
            if (
                ref is not None
                and end - pos >= 13
                and raw[pos] == _SAMPLES_TAG
                and raw[pos + 1] == end - pos - 2
                and raw[pos + 2] == _VALUE_TAG
                and raw[pos + 11] == _TIMESTAMP_TAG
            ):
                ts = stamps.get(raw[pos + 12 :])
                if ts is not None:
                    run = runs.get(ref)
                    if run is None:
                        runs[ref] = ([ts], [_unpack_double(raw, pos + 3)[0]])
                    else:
                        run[0].append(ts)
                        run[1].append(_unpack_double(raw, pos + 3)[0])
                    continue
            timestamps: list[int] = []
            values: list[float] = []
            try:
                ref = self._read_fast(raw, timestamps, values, stamps)
            except _SlowPathError:
                timestamps, values = [], []
                ref = _read_slow(raw, timestamps, values)
            if timestamps:
                run = runs.get(ref)
                if run is None:
                    runs[ref] = (timestamps, values)
                else:
                    run[0].extend(timestamps)
                    run[1].extend(values)
        batch = _columns(runs)
        return WriteBatch(batch=batch, metadata=metadata, series=len(raw_series))

    def _parse_native(self, data: bytes) -> WriteBatch | None:
        """The native split (``remote_write_native``), or ``None`` for the Python path."""
        columns = remote_write_native.columns(data, self._blocks)
        if columns is None:
            return None
        metadata: list[MetricMetadata] = []
        if columns[7]:  # metadata first: the Python path reports its errors before labels'
            try:
                metadata = [_metadata(m) for m in RawWriteRequest.FromString(data).metadata]
            except (DecodeError, ValueError, RuntimeError) as e:
                raise PermanentError(f"invalid WriteRequest protobuf: {e}") from e
        blocks = self._blocks  # the native cache is the only one on this path
        batch = remote_write_native.batch(
            columns, lambda key: blocks.get(key) or self._learn_natively(key)
        )
        if batch is None:
            return None
        return WriteBatch(batch=batch, metadata=metadata, series=columns[6])

    def _read_fast(
        self, b: bytes, timestamps: list[int], values: list[float], stamps: dict[bytes, int]
    ) -> SeriesLabels:
        end = len(b)
        pos = 0
        while pos < end and b[pos] == _LABELS_TAG:
            if pos + 1 >= end or b[pos + 1] & 0x80:
                raise _SlowPathError
            pos += 2 + b[pos + 1]
        if pos > end:
            raise _SlowPathError
        key = b[:pos]
        ts_append, v_append = timestamps.append, values.append
        while pos < end:
            if b[pos] != _SAMPLES_TAG or pos + 1 >= end or b[pos + 1] & 0x80:
                raise _SlowPathError
            p = pos + 2
            stop = p + b[pos + 1]
            if stop > end:
                raise _SlowPathError
            value = 0.0
            if p < stop and b[p] == _VALUE_TAG:
                if p + 9 > stop:
                    raise _SlowPathError
                value = _unpack_double(b, p + 1)[0]
                p += 9
            ts = 0
            if p < stop:
                if b[p] != _TIMESTAMP_TAG:
                    raise _SlowPathError
                raw_ts = b[p + 1 : stop]
                found = stamps.get(raw_ts)
                ts = _exact_varint(raw_ts) if found is None else found
                if found is None:
                    stamps[raw_ts] = ts
            ts_append(ts)
            v_append(value)
            pos = stop
        ref = self._labels.get(key)  # only now: the block is known to be all the labels
        return self._learn(key) if ref is None else ref

    def _learn(self, key: bytes) -> SeriesLabels:
        ref = self._validated(key)
        if self._max:
            if len(self._labels) >= self._max:
                self._labels.clear()
            self._labels[key] = ref
        return ref

    def _learn_natively(self, key: bytes) -> SeriesLabels:
        ref = self._validated(key)
        self._blocks.learn(key, ref)
        return ref

    def _validated(self, key: bytes) -> SeriesLabels:
        """The labels of a raw label block, checked (``PermanentError`` when invalid)."""
        pairs = _label_pairs(key)
        if pairs is None:
            try:
                parsed = TimeSeries.FromString(key)
            except (DecodeError, ValueError, RuntimeError) as e:
                raise PermanentError(f"invalid WriteRequest protobuf: {e}") from e
            pairs = [(label.name, label.value) for label in parsed.labels]
        name, labels = _series_labels(pairs)
        return SeriesLabels(name, labels)


def _columns(runs: dict[SeriesLabels, tuple[list[int], list[float]]]) -> SeriesBatch:
    offsets = [0]
    timestamps: list[int] = []
    values: list[float] = []
    for ts, vs in runs.values():
        timestamps += ts
        values += vs
        offsets.append(len(timestamps))
    return SeriesBatch(list(runs), offsets, timestamps, values)


class _SlowPathError(Exception):
    """The series is not in the common layout; protobuf's decoder reads it."""


def _read_slow(raw: bytes, timestamps: list[int], values: list[float]) -> SeriesLabels:
    try:
        parsed = TimeSeries.FromString(raw)
    except (DecodeError, ValueError, RuntimeError) as e:
        raise PermanentError(f"invalid WriteRequest protobuf: {e}") from e
    name, labels = _series_labels([(label.name, label.value) for label in parsed.labels])
    for point in parsed.samples:
        timestamps.append(point.timestamp)
        values.append(point.value)
    return SeriesLabels(name, labels)


def _exact_varint(raw: bytes) -> int:
    """A signed int64 from exactly one varint filling ``raw`` (else the slow path)."""
    n = len(raw)
    if not 0 < n <= 10 or raw[-1] & 0x80:
        raise _SlowPathError
    result = 0
    for i, byte in enumerate(raw):
        if i < n - 1 and not byte & 0x80:
            raise _SlowPathError
        result |= (byte & 0x7F) << (7 * i)
    if result >= 1 << 64:
        raise _SlowPathError
    return result - (1 << 64) if result >= 1 << 63 else result


def _label_pairs(block: bytes) -> list[tuple[str, str]] | None:
    """(name, value) of a label block in the usual layout (short fields, name then value);
    None for anything else, which protobuf's decoder then reads."""
    pairs: list[tuple[str, str]] = []
    pos, end = 0, len(block)
    try:
        while pos < end:
            p = pos + 2
            stop = p + block[pos + 1]
            fields = [b"", b""]
            for field, tag in enumerate((_LABELS_TAG, _SAMPLES_TAG)):  # Label: 1 name, 2 value
                if p < stop and block[p] == tag:
                    n = block[p + 1]
                    if n & 0x80 or p + 2 + n > stop:
                        return None
                    fields[field] = block[p + 2 : p + 2 + n]
                    p += 2 + n
            if p != stop or stop > end or block[pos] != _LABELS_TAG:
                return None
            pairs.append((fields[0].decode(), fields[1].decode()))
            pos = stop
    except IndexError:
        return None
    except UnicodeDecodeError as e:
        raise PermanentError(f"invalid WriteRequest protobuf: label is not UTF-8: {e}") from e
    return pairs


def _series_labels(pairs: list[tuple[str, str]]) -> tuple[str, dict[str, str]]:
    labels: dict[str, str] = {}
    name = ""
    previous = ""
    for i, (key, value) in enumerate(pairs):
        if i and key <= previous:
            problem = "duplicate" if key == previous else "unsorted"
            raise PermanentError(f"{problem} label name {key!r}: labels must be sorted, unique")
        previous = key
        if key == METRIC_NAME_LABEL:
            name = value
            continue
        if key not in _VALID_LABEL_NAMES:
            if not _LABEL_NAME.fullmatch(key):
                raise PermanentError(f"invalid label name {key!r}")
            _remember(_VALID_LABEL_NAMES, key)
        if value:
            labels[key] = value
    if not name:
        raise PermanentError(f"series without a __name__ label: {labels}")
    if name not in _VALID_METRIC_NAMES:
        if not _METRIC_NAME.fullmatch(name):
            raise PermanentError(f"invalid metric name {name!r}")
        _remember(_VALID_METRIC_NAMES, name)
    return name, labels


_VALID_NAMES_MAX = 10_000
_VALID_LABEL_NAMES: set[str] = set()
_VALID_METRIC_NAMES: set[str] = set()
"""Names that passed the regex already: a new series repeats its job's few label names and
metric names, and the regex was a tenth of the collector's time while 10,000 series were
created (bounded: cleared when full)."""


def _remember(names: set[str], name: str) -> None:
    if len(names) >= _VALID_NAMES_MAX:
        names.clear()
    names.add(name)


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
    "LABEL_CACHE_MAX",
    "SeriesDecoder",
    "WriteBatch",
    "decode",
    "decompress",
    "parse_write_request",
    "snappy_uncompressed_length",
]

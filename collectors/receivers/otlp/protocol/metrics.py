"""OTLP metrics -> Prometheus-style samples. Pure: no I/O, no state between requests.

meshfed stores metrics the Prometheus way (named series of float samples), so OTLP's data
model is mapped like Prometheus's own OTLP receiver does, with one simple naming rule:

- **Names**: every character outside ``[a-zA-Z0-9_:]`` becomes ``_``, runs of ``_`` collapse,
  a leading digit gets a ``_`` prefix. Monotonic sums get ``_total`` (unless already there).
  The unit is *not* appended to the name (Prometheus does by default); it goes to metadata.
- **Labels**: data point attributes, sanitised the same way (two attributes that collide
  after sanitising have their values joined with ``;``). From the resource: ``service.name``
  (prefixed ``service.namespace/`` when set) -> ``job``, ``service.instance.id`` ->
  ``instance``, and ``cluster``/``region`` as they are. Every other resource attribute goes
  to one ``target_info`` series per resource (value 1), as Prometheus does.
- **Gauge** -> gauge. **Sum**: cumulative monotonic -> counter ``<name>_total``; cumulative
  non-monotonic -> gauge. **Histogram** (cumulative) -> ``_bucket{le}`` (cumulative counts,
  ``le="+Inf"`` = count), ``_sum``, ``_count``. **Summary** -> ``<name>{quantile}``, ``_sum``,
  ``_count``.
- **Rejected** (counted for OTLP partial success, the rest of the request is kept): delta
  temporality (sums and histograms; a stateless receiver cannot turn deltas into the
  cumulative series Prometheus queries expect: configure the exporter for cumulative
  temporality), exponential histograms (use explicit-bucket histograms), points without a
  timestamp, histograms whose bucket counts do not match their bounds, metrics without a
  name or data.
- A point flagged ``no recorded value`` becomes a Prometheus stale marker.
"""

from __future__ import annotations

import itertools
import math
import re
import struct
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypeVar

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AggregationTemporality,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    SummaryDataPoint,
)

from collectors._core.model import CLUSTER_LABEL, REGION_LABEL, MetricMetadata, MetricType, Sample

STALE_NAN: float = struct.unpack(">d", (0x7FF0000000000002).to_bytes(8, "big"))[0]
"""Prometheus's stale marker (a NaN with a payload the query layer recognises)."""
_NO_RECORDED_VALUE = 1  # DataPointFlags.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
_CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
_INVALID = re.compile(r"[^a-zA-Z0-9_:]+")
_INVALID_LABEL = re.compile(r"[^a-zA-Z0-9_]+")
_UNDERSCORES = re.compile(r"__+")
_PROMOTED = {
    "service.name",
    "service.namespace",
    "service.instance.id",
    CLUSTER_LABEL,
    REGION_LABEL,
}
_MAX_ERRORS_REPORTED = 3


def normalize_metric_name(name: str) -> str:
    """``http.server.duration`` -> ``http_server_duration`` (the documented rule)."""
    out = _UNDERSCORES.sub("_", _INVALID.sub("_", name))
    return f"_{out}" if out[:1].isdigit() else out


def normalize_label_name(name: str) -> str:
    """Like metric names, without ``:``; keeps a leading ``__`` (reserved) as ``key_``."""
    out = _UNDERSCORES.sub("_", _INVALID_LABEL.sub("_", name))
    if out[:1].isdigit():
        return f"key_{out}"
    if out.startswith("_"):
        return f"key{out}"
    return out


def format_float(value: float) -> str:
    """Go's ``strconv.FormatFloat(v, 'f', -1, 64)`` as Prometheus prints ``le``/``quantile``."""
    if value == float("inf"):
        return "+Inf"
    if value == float("-inf"):
        return "-Inf"
    if math.isnan(value):
        return "NaN"
    text = f"{Decimal(repr(value)):f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def _label_value(value: AnyValue) -> str:
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "bool_value":
        return "true" if value.bool_value else "false"
    if which == "int_value":
        return str(value.int_value)
    if which == "double_value":
        return format_float(value.double_value)
    if which == "bytes_value":
        return value.bytes_value.hex()
    if which == "array_value":
        return "[" + ",".join(_label_value(v) for v in value.array_value.values) + "]"
    if which == "kvlist_value":
        inner = ",".join(f"{kv.key}={_label_value(kv.value)}" for kv in value.kvlist_value.values)
        return "{" + inner + "}"
    return ""


def labels_from_attributes(attributes: Iterable[KeyValue]) -> dict[str, str]:
    """Sanitised label names; colliding names join their values with ``;`` (key order)."""
    by_label: dict[str, list[tuple[str, str]]] = {}
    for kv in attributes:
        by_label.setdefault(normalize_label_name(kv.key), []).append(
            (kv.key, _label_value(kv.value))
        )
    return {name: ";".join(v for _, v in sorted(pairs)) for name, pairs in by_label.items()}


@dataclass(frozen=True, slots=True)
class ResourceLabels:
    """What one OTLP resource contributes: labels on every series, and ``target_info``'s."""

    promoted: Mapping[str, str]
    info: Mapping[str, str]


def resource_labels(attributes: Iterable[KeyValue]) -> ResourceLabels:
    """Split resource attributes into promoted labels and ``target_info`` labels."""
    raw = {kv.key: _label_value(kv.value) for kv in attributes}
    promoted: dict[str, str] = {}
    service = raw.get("service.name", "")
    if service:
        namespace = raw.get("service.namespace", "")
        promoted["job"] = f"{namespace}/{service}" if namespace else service
    if raw.get("service.instance.id"):
        promoted["instance"] = raw["service.instance.id"]
    for key in (CLUSTER_LABEL, REGION_LABEL):
        if raw.get(key):
            promoted[key] = raw[key]
    rest = [kv for kv in attributes if kv.key not in _PROMOTED]
    return ResourceLabels(promoted=promoted, info=labels_from_attributes(rest))


@dataclass(slots=True)
class MetricsConversion:
    """Samples and metadata of one request, and how many data points were refused (why)."""

    samples: list[Sample] = field(default_factory=list)
    metadata: dict[str, MetricMetadata] = field(default_factory=dict)
    data_points: int = 0
    rejected: int = 0
    errors: list[str] = field(default_factory=list)

    def reject(self, n: int, why: str) -> None:
        self.rejected += n
        if why not in self.errors and len(self.errors) < _MAX_ERRORS_REPORTED:
            self.errors.append(why)

    @property
    def error_message(self) -> str:
        return "; ".join(self.errors)


def _timestamp_ms(time_unix_nano: int) -> int:
    return time_unix_nano // 1_000_000


def _number(point: NumberDataPoint) -> float:
    if point.flags & _NO_RECORDED_VALUE:
        return STALE_NAN
    if point.WhichOneof("value") == "as_int":
        return float(point.as_int)
    return point.as_double


P = TypeVar("P", NumberDataPoint, HistogramDataPoint, SummaryDataPoint)


class _Converter:
    def __init__(self, out: MetricsConversion, base: Mapping[str, str]) -> None:
        self.out = out
        self.base = base

    def _labels(self, attributes: Iterable[KeyValue], **extra: str) -> dict[str, str]:
        labels = labels_from_attributes(attributes)
        labels.update(self.base)
        labels.update(extra)
        return labels

    def _add(self, name: str, labels: Mapping[str, str], ts_ms: int, value: float) -> None:
        self.out.samples.append(Sample(name=name, labels=labels, timestamp_ms=ts_ms, value=value))

    def _timed(self, metric: Metric, points: Iterable[P]) -> Iterator[P]:
        """Each point, counted; those without a time are rejected instead of yielded."""
        for point in points:
            self.out.data_points += 1
            if not point.time_unix_nano:
                self.out.reject(1, f"{metric.name}: data point without time_unix_nano")
                continue
            yield point

    def numbers(self, metric: Metric, name: str, points: Iterable[NumberDataPoint]) -> int:
        newest = 0
        for point in self._timed(metric, points):
            ts = _timestamp_ms(point.time_unix_nano)
            newest = max(newest, ts)
            self._add(name, self._labels(point.attributes), ts, _number(point))
        return newest

    def histograms(self, metric: Metric, name: str, points: Iterable[HistogramDataPoint]) -> int:
        newest = 0
        for point in self._timed(metric, points):
            bounds = list(point.explicit_bounds)
            counts = list(point.bucket_counts)
            if counts and len(counts) != len(bounds) + 1:
                self.out.reject(1, f"{metric.name}: bucket_counts must have len(bounds) + 1 items")
                continue
            if any(b <= a for a, b in itertools.pairwise(bounds)):
                self.out.reject(1, f"{metric.name}: explicit_bounds must be increasing")
                continue
            ts = _timestamp_ms(point.time_unix_nano)
            newest = max(newest, ts)
            stale = bool(point.flags & _NO_RECORDED_VALUE)
            labels = self._labels(point.attributes)
            if not counts:  # no buckets: only the +Inf bucket, which is the count
                bounds, counts = [], [point.count]
            running = 0
            for bound, count in zip([*bounds, float("inf")], counts, strict=True):
                running += count
                value = STALE_NAN if stale else float(running)
                self._add(f"{name}_bucket", {**labels, "le": format_float(bound)}, ts, value)
            if point.HasField("sum"):
                self._add(f"{name}_sum", labels, ts, STALE_NAN if stale else point.sum)
            self._add(f"{name}_count", labels, ts, STALE_NAN if stale else float(point.count))
        return newest

    def summaries(self, metric: Metric, name: str, points: Iterable[SummaryDataPoint]) -> int:
        newest = 0
        for point in self._timed(metric, points):
            ts = _timestamp_ms(point.time_unix_nano)
            newest = max(newest, ts)
            stale = bool(point.flags & _NO_RECORDED_VALUE)
            labels = self._labels(point.attributes)
            for q in point.quantile_values:
                value = STALE_NAN if stale else q.value
                self._add(name, {**labels, "quantile": format_float(q.quantile)}, ts, value)
            self._add(f"{name}_sum", labels, ts, STALE_NAN if stale else point.sum)
            self._add(f"{name}_count", labels, ts, STALE_NAN if stale else float(point.count))
        return newest


def _metadata(name: str, kind: MetricType, metric: Metric) -> MetricMetadata:
    return MetricMetadata(name=name, type=kind, help=metric.description, unit=metric.unit)


def _convert_metric(conv: _Converter, metric: Metric) -> int:
    """Add one metric's samples; returns its newest timestamp (0 if none)."""
    out = conv.out
    which = metric.WhichOneof("data")
    name = normalize_metric_name(metric.name)
    if not name or which is None:
        n = _point_count(metric)
        out.data_points += n
        out.reject(n or 1, f"metric {metric.name!r} without a name or data")
        return 0
    if which == "gauge":
        out.metadata[name] = _metadata(name, MetricType.GAUGE, metric)
        return conv.numbers(metric, name, metric.gauge.data_points)
    if which == "sum":
        points = metric.sum.data_points
        if metric.sum.aggregation_temporality != _CUMULATIVE:
            out.data_points += len(points)
            out.reject(len(points), f"{metric.name}: delta sums are not supported")
            return 0
        if metric.sum.is_monotonic:
            name = name if name.endswith("_total") else f"{name}_total"
            out.metadata[name] = _metadata(name, MetricType.COUNTER, metric)
        else:
            out.metadata[name] = _metadata(name, MetricType.GAUGE, metric)
        return conv.numbers(metric, name, points)
    if which == "histogram":
        hpoints = metric.histogram.data_points
        if metric.histogram.aggregation_temporality != _CUMULATIVE:
            out.data_points += len(hpoints)
            out.reject(len(hpoints), f"{metric.name}: delta histograms are not supported")
            return 0
        out.metadata[name] = _metadata(name, MetricType.HISTOGRAM, metric)
        return conv.histograms(metric, name, hpoints)
    if which == "summary":
        out.metadata[name] = _metadata(name, MetricType.SUMMARY, metric)
        return conv.summaries(metric, name, metric.summary.data_points)
    n = _point_count(metric)
    out.data_points += n
    out.reject(n, f"{metric.name}: exponential histograms are not supported")
    return 0


def _point_count(metric: Metric) -> int:
    which = metric.WhichOneof("data")
    if which is None:
        return 0
    return len(getattr(metric, which).data_points)


def samples_from_otlp(resource_metrics: Iterable[ResourceMetrics]) -> MetricsConversion:
    """Every data point of ``request.resource_metrics`` as samples (see the module doc)."""
    out = MetricsConversion()
    for rm in resource_metrics:
        resource = resource_labels(rm.resource.attributes)
        conv = _Converter(out, resource.promoted)
        newest = 0
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                newest = max(newest, _convert_metric(conv, metric))
        if newest and resource.info:
            labels = {**resource.info, **resource.promoted}
            out.samples.append(Sample("target_info", labels, newest, 1.0))
            out.metadata.setdefault(
                "target_info",
                MetricMetadata("target_info", MetricType.GAUGE, "Target metadata", ""),
            )
    return out

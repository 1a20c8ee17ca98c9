"""OTLP metrics -> samples: naming, each metric kind, what is refused (partial success)."""

from __future__ import annotations

import math
import struct

import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AggregationTemporality,
    Metric,
    ResourceMetrics,
)

from collectors._core.model import MetricType
from collectors.receivers.otlp.protocol.metrics import (
    STALE_NAN,
    format_float,
    normalize_label_name,
    normalize_metric_name,
    samples_from_otlp,
)

T = 1_700_000_000_000_000_000
CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
DELTA = AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA


def kv(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def request(*metrics: Metric, resource: tuple[KeyValue, ...] = ()) -> list[ResourceMetrics]:
    rm = ResourceMetrics()
    rm.resource.attributes.extend(resource)
    rm.scope_metrics.add().metrics.extend(metrics)
    return [rm]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("http.server.duration", "http_server_duration", id="dots"),
        pytest.param("a..b--c", "a_b_c", id="runs-collapse"),
        pytest.param("9lives", "_9lives", id="leading-digit"),
        pytest.param("ns:metric", "ns:metric", id="colon-kept"),
    ],
)
def test_metric_names(raw: str, expected: str) -> None:
    assert normalize_metric_name(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("http.method", "http_method", id="dots"),
        pytest.param("__reserved", "key_reserved", id="reserved"),
        pytest.param("1x", "key_1x", id="digit"),
    ],
)
def test_label_names(raw: str, expected: str) -> None:
    assert normalize_label_name(raw) == expected


@pytest.mark.parametrize(
    ("value", "text"),
    [
        pytest.param(1.0, "1", id="integer"),
        pytest.param(0.005, "0.005", id="fraction"),
        pytest.param(1e-05, "0.00001", id="no-exponent"),
        pytest.param(math.inf, "+Inf", id="inf"),
    ],
)
def test_format_float(value: float, text: str) -> None:
    assert format_float(value) == text


def test_gauge_and_resource_labels() -> None:
    metric = Metric(name="temp.c", unit="Cel")
    metric.gauge.data_points.add(time_unix_nano=T, as_double=21.5, attributes=[kv("room", "a")])
    resource = (kv("service.name", "api"), kv("cluster", "east"), kv("host.name", "h1"))
    out = samples_from_otlp(request(metric, resource=resource))
    [sample, info] = out.samples
    assert (sample.name, sample.value, sample.timestamp_ms) == ("temp_c", 21.5, T // 1_000_000)
    assert sample.labels == {"room": "a", "job": "api", "cluster": "east"}
    assert (info.name, info.labels) == (
        "target_info",
        {"host_name": "h1", "job": "api", "cluster": "east"},
    )
    assert out.metadata["temp_c"].type is MetricType.GAUGE
    assert out.metadata["temp_c"].unit == "Cel"
    assert out.rejected == 0


@pytest.mark.parametrize(
    ("monotonic", "name", "kind"),
    [
        pytest.param(True, "hits_total", MetricType.COUNTER, id="monotonic-counter"),
        pytest.param(False, "hits", MetricType.GAUGE, id="updown-gauge"),
    ],
)
def test_cumulative_sums(monotonic: bool, name: str, kind: MetricType) -> None:
    metric = Metric(name="hits")
    metric.sum.aggregation_temporality = CUMULATIVE
    metric.sum.is_monotonic = monotonic
    metric.sum.data_points.add(time_unix_nano=T, as_int=3)
    out = samples_from_otlp(request(metric))
    assert [(s.name, s.value) for s in out.samples] == [(name, 3.0)]
    assert out.metadata[name].type is kind


def test_histogram_buckets_are_cumulative() -> None:
    metric = Metric(name="latency")
    metric.histogram.aggregation_temporality = CUMULATIVE
    metric.histogram.data_points.add(
        time_unix_nano=T, count=6, sum=30.0, explicit_bounds=[1.0, 5.0], bucket_counts=[1, 2, 3]
    )
    out = samples_from_otlp(request(metric))
    got = {(s.name, s.labels.get("le", "")): s.value for s in out.samples}
    assert got == {
        ("latency_bucket", "1"): 1.0,
        ("latency_bucket", "5"): 3.0,
        ("latency_bucket", "+Inf"): 6.0,
        ("latency_sum", ""): 30.0,
        ("latency_count", ""): 6.0,
    }
    assert out.metadata["latency"].type is MetricType.HISTOGRAM


def test_summary_quantiles() -> None:
    metric = Metric(name="rpc")
    point = metric.summary.data_points.add(time_unix_nano=T, count=4, sum=10.0)
    point.quantile_values.add(quantile=0.5, value=2.0)
    out = samples_from_otlp(request(metric))
    got = {(s.name, s.labels.get("quantile", "")): s.value for s in out.samples}
    assert got == {("rpc", "0.5"): 2.0, ("rpc_sum", ""): 10.0, ("rpc_count", ""): 4.0}


def _delta_sum() -> Metric:
    metric = Metric(name="d")
    metric.sum.aggregation_temporality = DELTA
    metric.sum.data_points.add(time_unix_nano=T, as_int=1)
    metric.sum.data_points.add(time_unix_nano=T, as_int=1)
    return metric


def _exponential() -> Metric:
    metric = Metric(name="e")
    metric.exponential_histogram.data_points.add(time_unix_nano=T, count=1)
    return metric


def _no_time() -> Metric:
    metric = Metric(name="g")
    metric.gauge.data_points.add(as_double=1.0)
    return metric


def _bad_buckets() -> Metric:
    metric = Metric(name="h")
    metric.histogram.aggregation_temporality = CUMULATIVE
    metric.histogram.data_points.add(time_unix_nano=T, explicit_bounds=[1.0], bucket_counts=[1])
    return metric


@pytest.mark.parametrize(
    ("metric", "rejected", "why"),
    [
        pytest.param(_delta_sum(), 2, "delta sums", id="delta-sum"),
        pytest.param(_exponential(), 1, "exponential", id="exponential-histogram"),
        pytest.param(_no_time(), 1, "without time_unix_nano", id="no-timestamp"),
        pytest.param(_bad_buckets(), 1, "bucket_counts", id="bucket-mismatch"),
        pytest.param(Metric(name="empty"), 1, "without a name or data", id="no-data"),
    ],
)
def test_refused_points_are_counted_and_the_rest_kept(
    metric: Metric, rejected: int, why: str
) -> None:
    good = Metric(name="ok")
    good.gauge.data_points.add(time_unix_nano=T, as_double=1.0)
    out = samples_from_otlp(request(metric, good))
    assert out.rejected == rejected
    assert why in out.error_message
    assert [s.name for s in out.samples] == ["ok"]


def test_no_recorded_value_is_a_stale_marker() -> None:
    metric = Metric(name="g")
    metric.gauge.data_points.add(time_unix_nano=T, as_double=5.0, flags=1)
    [sample] = samples_from_otlp(request(metric)).samples
    assert struct.pack("<d", sample.value) == struct.pack("<d", STALE_NAN)


def test_colliding_attributes_join_values() -> None:
    metric = Metric(name="g")
    metric.gauge.data_points.add(
        time_unix_nano=T, as_double=1.0, attributes=[kv("a.b", "1"), kv("a_b", "2")]
    )
    [sample] = samples_from_otlp(request(metric)).samples
    assert sample.labels == {"a_b": "1;2"}

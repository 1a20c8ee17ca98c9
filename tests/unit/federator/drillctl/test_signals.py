"""Golden-signal PromQL, windows and summaries (pure)."""

from __future__ import annotations

import math

import pytest

from federator.core.model import ServiceKey
from federator.drillctl.signals import Signal, Window, matrix_points, queries, summarize, windows

pytestmark = pytest.mark.unit
KEY = ServiceKey("default", "ratings")


def test_queries_split_by_client_cluster_and_select_the_service() -> None:
    q = queries(KEY, "20s")
    assert q[Signal.RATE] == (
        'sum by (source_cluster) (rate(istio_requests_total{reporter="source",'
        'destination_service_name="ratings",'
        'destination_service_namespace="default"}[20s]))'
    )
    assert 'response_code=~"5.."' in q[Signal.ERRORS]
    assert q[Signal.P99].startswith("histogram_quantile(0.99, sum by (source_cluster, le)")
    assert "istio_request_duration_milliseconds_bucket" in q[Signal.P50]


@pytest.mark.parametrize(
    ("started", "ended", "verified", "now", "lead", "stop", "step"),
    [
        pytest.param(1000, 1020, 1023, 5000, 60, 1083, 1, id="short-drill-min-60s"),
        pytest.param(1000, 4600, 4610, 99999, 900, 5510, 23, id="long-drill-capped-15m"),
        pytest.param(1000, 1100, 1101, 1130, 100, 1130, 1, id="after-not-past-now"),
    ],
)
def test_windows(
    started: float, ended: float, verified: float, now: float, lead: float, stop: float,
    step: float,
) -> None:  # fmt: skip
    w = windows(started=started, ended=ended, verified=verified, now=now)
    assert (w.lead, w.stop, w.step) == (lead, stop, step)
    assert w.of(started - 1) is Window.BEFORE
    assert w.of(started) is Window.DURING
    assert w.of(verified) is Window.AFTER
    assert w.of(stop + 1) is None


def test_summary_is_the_mean_per_window() -> None:
    w = windows(started=100, ended=110, verified=110, now=1000)
    points = ((95.0, 1.0), (99.0, 3.0), (100.0, 10.0), (109.0, 20.0), (111.0, 2.0), (9999.0, 5.0))
    s = summarize(points, w)
    assert (s.before, s.during, s.after) == (2.0, 15.0, 2.0)


def test_matrix_points_drop_nan_and_name_unknown_clusters() -> None:
    result = [
        {"metric": {"source_cluster": "c1"}, "values": [[1, "0.5"], [2, "NaN"], [3, "+Inf"]]},
        {"metric": {}, "values": [[1, "2"]]},
    ]
    out = matrix_points(result)
    assert out == {"c1": ((1.0, 0.5),), "(unknown)": ((1.0, 2.0),)}
    assert all(math.isfinite(v) for pts in out.values() for _, v in pts)

"""Folding per-shard counts into the ``/api/v1/status/tsdb`` answer (pure parts)."""

from __future__ import annotations

import json

import pytest

from collectors.store.cardinality import Refusal, ShardCounts, parse_refusals, summarize
from collectors.store.config import LimitSettings

LIMITS = LimitSettings(max_series_total=100, max_series_per_tenant=30, tenant_label="cluster")


@pytest.mark.parametrize(
    ("stats", "expected"),
    [
        pytest.param({}, [], id="nothing-refused"),
        pytest.param(
            {"series_refused": 4, "samples_over_limit": 9},
            [],
            id="totals-alone-are-not-per-tenant",
        ),
        pytest.param(
            {
                "refused_series|max_series_per_tenant|a": 3,
                "refused_samples|max_series_per_tenant|a": 7,
                "refused_series|max_series_total|b": 1,
                "refused_samples|max_series_total|b": 2,
            },
            [
                Refusal("a", "max_series_per_tenant", 3, 7),
                Refusal("b", "max_series_total", 1, 2),
            ],
            id="per-tenant-and-reason",
        ),
        pytest.param(
            {"refused_series|max_series_total|x|y": 2, "refused_samples|max_series_total|x|y": 5},
            [Refusal("x|y", "max_series_total", 2, 5)],
            id="tenant-with-separator",
        ),
        pytest.param(
            {"refused_series|max_series_total|": 1, "refused_samples|max_series_total|": 1},
            [Refusal("", "max_series_total", 1, 1)],
            id="series-without-tenant-label",
        ),
    ],
)
def test_parse_refusals(stats: dict[str, int], expected: list[Refusal]) -> None:
    assert parse_refusals(stats) == expected


def _shards() -> list[ShardCounts]:
    return [
        ShardCounts(
            series=3,
            tenants={"a": 2, "b": 1},
            stats={"refused_series|max_series_per_tenant|a": 1},
            pairs={("__name__", "up"): 2, ("__name__", "x"): 1, ("cluster", "a"): 2},
        ),
        ShardCounts(
            series=2,
            tenants={"a": 1, "b": 1, "gone": 0},
            stats={"refused_series|max_series_per_tenant|a": 2},
            pairs={("__name__", "up"): 2, ("cluster", "a"): 1, ("cluster", "b"): 1, ("j", "z"): 0},
        ),
    ]


def test_summarize_adds_shards_and_drops_empty_entries() -> None:
    status = summarize(_shards(), limits=LIMITS)
    assert status.num_series == 5
    assert status.series_by_tenant == {"a": 3, "b": 2}
    assert status.series_by_metric == [("up", 4), ("x", 1)]
    assert status.series_by_pair[0] == ("__name__=up", 4)
    assert ("j=z", 0) not in status.series_by_pair
    assert status.values_by_label == [("__name__", 2), ("cluster", 2)]
    assert status.num_label_pairs == 4
    assert status.refusals == [Refusal("a", "max_series_per_tenant", 3, 0)]
    assert not status.truncated


@pytest.mark.parametrize(
    ("top", "expected"),
    [
        pytest.param(1, [("__name__=up", 4)], id="top-1"),
        pytest.param(
            3, [("__name__=up", 4), ("cluster=a", 3), ("__name__=x", 1)], id="ties-by-name"
        ),
        pytest.param(0, [], id="none"),
    ],
)
def test_top_keeps_the_largest_in_a_stable_order(top: int, expected: list[tuple[str, int]]) -> None:
    assert summarize(_shards(), limits=LIMITS, top=top).series_by_pair == expected


def test_json_has_prometheus_shape_and_the_caps() -> None:
    shards = [*_shards(), ShardCounts(truncated=True), ShardCounts(), ShardCounts()]
    data = json.loads(summarize(shards, limits=LIMITS).to_json())
    assert data["headStats"] == {"numSeries": 5, "numLabelPairs": 4}
    assert data["seriesCountByMetricName"][0] == {"name": "up", "value": 4}
    mesh = data["meshfed"]
    assert mesh["seriesCountByTenant"] == [{"name": "a", "value": 3}, {"name": "b", "value": 2}]
    assert mesh["limits"] == {
        "maxSeriesTotal": 100,
        "maxSeriesPerTenant": 30,
        "shards": 5,
        "maxSeriesTotalPerShard": 20,
        "maxSeriesPerTenantPerShard": 6,
    }
    assert mesh["refused"] == [
        {"tenant": "a", "reason": "max_series_per_tenant", "series": 3, "samples": 0}
    ]
    assert mesh["truncated"] is True

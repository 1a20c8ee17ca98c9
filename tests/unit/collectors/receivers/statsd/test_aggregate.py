"""StatsD aggregation and flush math: a worked timer example (10..100 ms), the reference's idle
rules, gauge deltas, worker merges, bounds, and the graphite-with-underscores names."""

from __future__ import annotations

import pytest

from collectors.receivers.statsd.aggregate import (
    Accumulator,
    Aggregator,
    AggregatorSettings,
    FlushResult,
)
from collectors.receivers.statsd.math import js_round, percentile_suffix, timer_stats

NOW = 1_700_000_000_000


def acc(max_keys: int = 1000, max_values: int = 10_000) -> Accumulator:
    return Accumulator(max_keys=max_keys, max_values=max_values, max_events=10)


def run(
    datagrams: list[bytes], settings: AggregatorSettings | None = None, flushes: int = 1
) -> list[dict[str, float]]:
    agg = Aggregator(settings=settings or AggregatorSettings(), resource={})
    a = acc()
    out = []
    for i in range(flushes):
        if i == 0:
            for n, d in enumerate(datagrams):
                a.ingest(d, n)
        agg.merge([a.take()])
        result = agg.flush(NOW + i)
        out.append({s.name: s.value for s in result.samples if "statsd" not in s.name})
    return out


def test_worked_example_from_protocols() -> None:
    stats = timer_stats([float(v) for v in range(100, 0, -10)], 10.0, (90.0, 99.0), 10_000)
    assert {
        k: stats[k] for k in ("count_90", "mean_90", "upper_90", "sum_90", "sum_squares_90")
    } == {"count_90": 9, "mean_90": 50, "upper_90": 90, "sum_90": 450, "sum_squares_90": 28500}
    assert (stats["count"], stats["mean"], stats["median"], stats["upper"], stats["lower"]) == (
        10,
        55,
        55,
        100,
        10,
    )
    assert stats["std"] == pytest.approx(28.722813232690143, rel=1e-12)
    assert (stats["count_99"], stats["upper_99"], stats["count_ps"]) == (10, 100, 1.0)


@pytest.mark.parametrize(
    ("values", "pcts", "expected"),
    [
        pytest.param(
            [5.0], (90.0,), {"count_90": 1, "mean_90": 5, "upper_90": 5}, id="single-value"
        ),
        pytest.param([1.0, 2.0], (10.0,), {}, id="threshold-rounds-to-zero"),
        pytest.param(
            [1.0, 2.0, 3.0, 4.0],
            (-50.0,),
            {"count_top50": 2, "lower_top50": 3, "sum_top50": 7},
            id="negative-percentile",
        ),
        pytest.param(
            [1.0, 2.0, 3.0, 4.0],
            (62.5,),
            {"count_62_5": 3, "upper_62_5": 3},
            id="fractional-name-and-half-up",
        ),
    ],
)
def test_percentiles(
    values: list[float], pcts: tuple[float, ...], expected: dict[str, float]
) -> None:
    stats = timer_stats(values, float(len(values)), pcts, 1000)
    suffix = percentile_suffix(pcts[0])
    assert {k: v for k, v in stats.items() if k.endswith("_" + suffix)} == {
        k: v for k, v in stats.items() if k in expected or (k.endswith("_" + suffix) and expected)
    }
    assert {k: stats[k] for k in expected} == expected


def test_js_round_and_suffix() -> None:
    assert (js_round(2.5), js_round(0.49999999999999994), js_round(8.9)) == (3, 0, 9)
    assert (percentile_suffix(90.0), percentile_suffix(90.5), percentile_suffix(-10.0)) == (
        "90",
        "90_5",
        "top10",
    )


def test_counters_timers_gauges_sets_and_idle_flush() -> None:
    first, second = run(
        [
            b"a.b:1|c\na.b:1|c|@0.5",
            b"t:10|ms|@0.5\nt:20|ms",
            b"g:5|g\ng:+2|g",
            b"s:x|s\ns:y|s\ns:x|s",
        ],
        AggregatorSettings(interval_ms=2000),
        flushes=2,
    )
    assert first["stats_counters_a_b_count"] == 3 and first["stats_counters_a_b_rate"] == 1.5
    assert first["stats_timers_t_count"] == 3 and first["stats_timers_t_upper_90"] == 20
    assert first["stats_gauges_g"] == 7 and first["stats_sets_s_count"] == 2
    assert second == {
        "stats_counters_a_b_count": 0,
        "stats_counters_a_b_rate": 0,
        "stats_timers_t_count": 0,
        "stats_timers_t_count_ps": 0,
        "stats_gauges_g": 7,
        "stats_sets_s_count": 0,
    }


def test_delete_idle_stats_and_gauge_ttl() -> None:
    settings = AggregatorSettings(
        delete_counters=True,
        delete_timers=True,
        delete_sets=True,
        delete_gauges=True,
        gauges_max_ttl=1,
    )
    first, second = run([b"c:1|c\nt:1|ms\ng:1|g\ns:a|s"], settings, flushes=2)
    assert len(first) == 2 + 1 + 1 + 10 + 4  # count/rate, gauge, set, timer fields
    assert second == {}


@pytest.mark.parametrize(
    ("lines", "value"),
    [
        pytest.param([b"g:+4|g"], 4.0, id="delta-on-missing-gauge-sets"),
        pytest.param([b"g:10|g", b"g:-3|g", b"g:+1.5|g"], 8.5, id="deltas-apply-in-order"),
        pytest.param([b"g:0|g", b"g:-2|g"], -2.0, id="delta-on-zero"),
        pytest.param([b"g:1|g", b"g:+1|g", b"g:7|g"], 7.0, id="absolute-wins"),
    ],
)
def test_gauges(lines: list[bytes], value: float) -> None:
    assert run(lines)[0]["stats_gauges_g"] == value


def test_gauge_deltas_apply_to_previous_flush_value() -> None:
    agg = Aggregator(settings=AggregatorSettings(), resource={})
    a = acc()
    a.ingest(b"g:10|g", 1)
    agg.merge([a.take()])
    agg.flush(NOW)
    a.ingest(b"g:+5|g", 2)
    agg.merge([a.take()])
    assert {s.name: s.value for s in agg.flush(NOW + 1).samples}["stats_gauges_g"] == 15


def test_worker_partials_merge_in_receive_order() -> None:
    agg = Aggregator(settings=AggregatorSettings(percentiles=(50.0,)), resource={})
    w1, w2 = acc(), acc()
    w1.ingest(b"c:1|c\nt:1|ms\nt:3|ms\ns:a|s\ng:10|g", 100)
    w2.ingest(b"c:2|c\nt:2|ms\ns:b|s\ns:a|s\ng:+1|g", 200)
    w1.ingest(b"g:+3|g", 300)
    agg.merge([w1.take(), w2.take()])
    got = {s.name: s.value for s in agg.flush(NOW).samples}
    assert got["stats_counters_c_count"] == 3 and got["stats_timers_t_median"] == 2
    assert got["stats_sets_s_count"] == 2 and got["stats_gauges_g"] == 14


def test_bounds_drop_and_count_exactly() -> None:
    a = acc(max_keys=10, max_values=5)
    a.ingest(b"\n".join(f"k{i}:1|c".encode() for i in range(15)), 0)
    a.ingest(b"\n".join(b"t:1|ms" for _ in range(8)), 0)
    partial = a.take()
    assert (len(partial.counters), partial.dropped) == (10, 5 + 8)


def test_labels_resource_and_names() -> None:
    agg = Aggregator(settings=AggregatorSettings(), resource={"cluster": "c1", "env": "default"})
    a = acc()
    a.ingest(b"app.lat:5|ms|#env:prod,9lives:x\nbad line\nmy-key;x=y:1|c", 0)
    agg.merge([a.take()])
    result: FlushResult = agg.flush(NOW)
    upper = next(s for s in result.samples if s.name == "stats_timers_app_lat_upper_90")
    assert dict(upper.labels) == {"env": "prod", "_9lives": "x", "cluster": "c1"}
    assert upper.timestamp_ms == NOW
    names = {s.name for s in result.samples}
    assert {
        "stats_counters_my_key_x_y_count",
        "stats_counters_statsd_bad_lines_seen_count",
    } <= names
    assert (result.lines, result.bad_lines) == (3, 1)


def test_timestamped_counter_keeps_its_time() -> None:
    agg = Aggregator(settings=AggregatorSettings(), resource={})
    a = acc()
    a.ingest(b"c:2|c|T1600000000\nc:3|c|T1600000000", 0)
    agg.merge([a.take()])
    stamped = [s for s in agg.flush(NOW).samples if s.timestamp_ms == 1_600_000_000_000]
    assert [(s.name, s.value) for s in stamped] == [
        ("stats_counters_c_count", 5),
        ("stats_counters_c_rate", 0.5),
    ]

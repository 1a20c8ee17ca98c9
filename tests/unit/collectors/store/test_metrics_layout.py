"""Key schema (hash tags), settings validation and the pure planning of metric reads."""

from __future__ import annotations

from dataclasses import replace

import pytest
from redis.crc import key_slot

from collectors._core.errors import ConfigError, PermanentError
from collectors.promql.source import LabelMatcher, MatchType
from collectors.store import keys
from collectors.store.config import (
    ChunkSettings,
    LimitSettings,
    RedisSettings,
    StoreSettings,
    TierSettings,
)
from collectors.store.metrics_lua import write_arguments
from collectors.store.metrics_model import (
    check_selector,
    labels_from_json,
    plan_segments,
    plan_shard,
    series_key,
)

EQ, NEQ, RE, NRE = MatchType.EQUAL, MatchType.NOT_EQUAL, MatchType.REGEX, MatchType.NOT_REGEX


def _slot(key: str) -> int:
    return int(key_slot(key.encode()))


@pytest.mark.parametrize("shard", [0, 7, 1023])
def test_every_key_of_a_shard_is_in_one_slot(shard: int) -> None:
    script_keys, args = write_arguments(
        shard, cap_total=1, cap_tenant=1, max_samples=1, max_span_ms=1
    )
    shard_keys = [
        *script_keys,
        *(a for a in args if isinstance(a, str)),  # keys and key prefixes the script gets
        keys.label_values_key(shard, "job"),
        keys.postings_key(shard, "job", "{other}"),
        keys.head_key(shard, "123"),
        keys.chunks_key(shard, "1m", "123"),
        keys.watermark_key(shard, "1h"),
        keys.label_values_prefix(shard) + "x{y}",
    ]
    assert len({_slot(k) for k in shard_keys}) == 1


def test_shards_spread_over_slots() -> None:
    assert len({_slot(keys.series_all_key(s)) for s in range(16)}) == 16


def test_series_identity_is_canonical() -> None:
    a = series_key("up", {"b": "2", "a": "1", "empty": ""}, shards=16, tenant_label="a")
    b = series_key("up", {"a": "1", "b": "2"}, shards=16, tenant_label="a")
    assert a == b and a.tenant == "1" and a.shard == int(a.series_id) % 16
    assert labels_from_json(a.labels_json) == {"__name__": "up", "a": "1", "b": "2"}
    assert series_key("up", {"a": "2"}, shards=16, tenant_label="a") != a


@pytest.mark.parametrize(
    ("name", "labels"),
    [
        pytest.param("", {"a": "b"}, id="no-name"),
        pytest.param("up", {"": "b"}, id="empty-label-name"),
        pytest.param("up", {"a\x00": "b"}, id="nul-in-label-name"),
    ],
)
def test_bad_series_are_permanent_errors(name: str, labels: dict[str, str]) -> None:
    with pytest.raises(PermanentError):
        series_key(name, labels, shards=4, tenant_label="cluster")


@pytest.mark.parametrize(
    ("matchers", "ok"),
    [
        pytest.param([LabelMatcher("a", EQ, "")], False, id="equal-empty"),
        pytest.param([LabelMatcher("a", RE, ".*")], False, id="regex-matching-empty"),
        pytest.param([LabelMatcher("a", NEQ, "x")], False, id="not-equal"),
        pytest.param([LabelMatcher("a", NEQ, "")], True, id="not-equal-empty"),
        pytest.param([LabelMatcher("a", NRE, ".*"), LabelMatcher("b", RE, "x")], True, id="mix"),
    ],
)
def test_selector_rule(matchers: list[LabelMatcher], ok: bool) -> None:
    if ok:
        check_selector(matchers)
    else:
        with pytest.raises(PermanentError, match="at least one non-empty matcher"):
            check_selector(matchers)


def test_plan_shard_uses_postings_and_exclusions() -> None:
    values = {"code": {"200", "404", "500"}, "job": {"api"}}
    plan = plan_shard(
        [
            LabelMatcher("__name__", EQ, "http"),
            LabelMatcher("code", RE, "[45].."),
            LabelMatcher("job", NEQ, "api"),
        ],
        values,
    )
    assert plan.equal == [("__name__", "http")]
    assert plan.unions == [[("code", "404"), ("code", "500")]]
    assert plan.excluded == [("job", "api")]
    assert plan_shard([LabelMatcher("code", RE, "3..")], values).empty


MIN, HOUR = 60_000, 3_600_000
TIERS = (
    TierSettings("raw", 0, 10 * HOUR),
    TierSettings("1m", MIN, 100 * HOUR),
    TierSettings("1h", HOUR, 1000 * HOUR),
)


@pytest.mark.parametrize(
    ("floors", "start", "end", "expected"),
    [
        pytest.param({}, 0, 50 * HOUR, [("raw", 0, 50 * HOUR)], id="never-trimmed-reads-raw"),
        pytest.param(
            {"raw": 40 * HOUR, "1m": 0, "1h": 0},
            45 * HOUR,
            50 * HOUR,
            [("raw", 45 * HOUR, 50 * HOUR)],
            id="inside-raw-retention",
        ),
        pytest.param(
            {"raw": 40 * HOUR, "1m": 10 * HOUR, "1h": 0},
            5 * HOUR,
            50 * HOUR,
            [
                ("1h", 5 * HOUR, 10 * HOUR - 1),
                ("1m", 10 * HOUR, 40 * HOUR - 1),
                ("raw", 40 * HOUR, 50 * HOUR),
            ],
            id="stitched",
        ),
        pytest.param(
            {"raw": 40 * HOUR, "1m": 10 * HOUR},
            20 * HOUR,
            30 * HOUR,
            [("1m", 20 * HOUR, 30 * HOUR)],
            id="only-downsampled",
        ),
    ],
)
def test_plan_segments(
    floors: dict[str, int], start: int, end: int, expected: list[tuple[str, int, int]]
) -> None:
    segments = plan_segments(TIERS, floors, start, end, max_samples=120, max_span_ms=2 * HOUR)
    assert [(s.tier.name, s.start_ms, s.end_ms) for s in segments] == expected


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        pytest.param(StoreSettings(redis=RedisSettings(url="http://x")), "redis.url", id="scheme"),
        pytest.param(StoreSettings(chunks=ChunkSettings(max_samples=1)), "max_samples", id="chunk"),
        pytest.param(StoreSettings(chunks=ChunkSettings(shards=0)), "shards", id="shards"),
        pytest.param(
            StoreSettings(limits=LimitSettings(max_series_per_query=0)), "max_series", id="limit"
        ),
        pytest.param(StoreSettings(tiers=()), "raw tier", id="no-tiers"),
        pytest.param(StoreSettings(tiers=(TIERS[1],)), "raw tier", id="first-not-raw"),
        pytest.param(
            StoreSettings(tiers=(TIERS[0], replace(TIERS[1], retention_ms=HOUR))),
            "kept longer",
            id="retention-must-grow",
        ),
        pytest.param(
            StoreSettings(tiers=(TIERS[0], replace(TIERS[1], name="1M"))), "lowercase", id="name"
        ),
        pytest.param(
            StoreSettings(tiers=(replace(TIERS[0], retention_ms=3 * HOUR), TIERS[1])),
            "downsampled before its source expires",
            id="source-expires-first",
        ),
        pytest.param(
            StoreSettings(redis=RedisSettings(embedded_appendfsync="sometimes")),
            "embedded_appendfsync must be always, everysec or no",
            id="appendfsync-unknown",
        ),
    ],
)
def test_settings_validation(settings: StoreSettings, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings.validate()


@pytest.mark.parametrize(
    "policy",
    [
        pytest.param("always", id="always-fsync-before-reply"),
        pytest.param("everysec", id="everysec"),
        pytest.param("no", id="no-write-before-reply-like-prometheus"),
    ],
)
def test_every_redis_aof_policy_is_accepted(policy: str) -> None:
    StoreSettings(redis=RedisSettings(embedded_appendfsync=policy)).validate()


@pytest.mark.parametrize(
    "url",
    [
        "redis://u:p@localhost:6379/0",
        "rediss://localhost:6380",
        "unix:///tmp/r.sock",
        "redis+cluster://10.0.0.1:7000",
        None,
    ],
)
def test_valid_settings(url: str | None) -> None:
    StoreSettings(redis=RedisSettings(url=url)).validate()

"""The write module leaves a series' ``last`` entry behind its non-empty head (real Redis).

``MESHFED.WRITE`` writes the entry only when the head was empty, and sets the shard's
``last_lags`` key; every other reader of the entry must then take the head's tail: the
write script (a collector without the module on the same Redis), the cut script (which
writes the entry afresh) and ``/api/v1/series``. Each case here fails when that reader
trusts the lagging entry; the module itself is checked to leave it behind (else the other
cases would pass without testing anything).
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from collectors._core.model import Sample
from collectors.promql.source import LabelMatcher, MatchType
from collectors.store import keys
from collectors.store.config import RedisSettings
from collectors.store.metrics_lua import write_arguments
from collectors.store.metrics_model import series_key
from collectors.store.metrics_module import COMMAND, installed_module
from collectors.store.store import TelemetryStore
from tests.helpers.native import require_redis_module
from tests.integration.collectors.store.conftest import small_settings

T0 = 1_700_000_000_000
STEP = 15_000
LABELS = {"job": "a"}


def _sample(i: int, value: float | None = None) -> Sample:
    return Sample("m", LABELS, T0 + i * STEP, float(i) if value is None else value)


def _record(i: int, value: float | None = None) -> bytes:
    return struct.pack(">qd", T0 + i * STEP, float(i) if value is None else value)


@pytest.fixture
async def with_module(tmp_path: Path) -> AsyncIterator[TelemetryStore]:
    require_redis_module(installed_module() is not None)
    store = TelemetryStore(settings=small_settings(url=None, data_dir=tmp_path / "redis"))
    await store.start()
    yield store
    await store.shutdown()


@pytest.fixture
async def script_only(with_module: TelemetryStore) -> AsyncIterator[TelemetryStore]:
    """A second store on the same Redis that never uses the module."""
    embedded = with_module.connection.embedded
    assert embedded is not None
    settings = with_module.settings
    redis = RedisSettings(url=embedded.url, write_module=False)
    store = TelemetryStore(settings=replace(settings, redis=redis))
    await store.start()
    yield store
    await store.shutdown()


class _Series:
    """The series of ``LABELS``: its raw ``last`` entry and head in ``store``'s Redis."""

    def __init__(self, store: TelemetryStore) -> None:
        settings = store.settings
        key = series_key(
            "m", LABELS, shards=settings.chunks.shards, tenant_label=settings.limits.tenant_label
        )
        self.id, self.shard = key.series_id, key.shard
        self.redis: Any = store.connection.client

    async def last_entry(self) -> bytes:
        entry = await self.redis.hget(keys.series_last_key(self.shard), self.id)
        assert isinstance(entry, bytes)
        return entry

    async def head(self) -> bytes:
        return bytes(await self.redis.get(keys.head_key(self.shard, self.id)) or b"")

    async def lags(self) -> bool:
        return bool(await self.redis.exists(keys.series_last_lags_key(self.shard)))


async def test_the_module_leaves_the_entry_behind_a_non_empty_head(
    with_module: TelemetryStore,
) -> None:
    series = _Series(with_module)
    await with_module.write_samples([_sample(0)])
    assert await series.last_entry() == _record(0) + _record(0)[:8]
    assert not await series.lags()  # the head was empty: the entry was written

    await with_module.write_samples([_sample(1)])
    assert await series.last_entry() == _record(0) + _record(0)[:8]
    assert await series.head() == _record(0) + _record(1)
    assert await series.lags()


@pytest.mark.parametrize(
    ("late", "counted"),
    [
        pytest.param(_sample(1), "duplicates_ignored", id="duplicate-of-the-head-tail"),
        pytest.param(_sample(1, 99.0), "duplicate_conflicts", id="conflict-with-the-head-tail"),
        pytest.param(Sample("m", LABELS, T0 + STEP // 2, 7.0), "out_of_order", id="older"),
    ],
)
async def test_the_write_script_orders_against_the_head_tail(
    with_module: TelemetryStore, script_only: TelemetryStore, late: Sample, counted: str
) -> None:
    """Against the lagging entry (sample 0) the late sample would look new and be appended
    after sample 1: the head would go out of order."""
    series = _Series(with_module)
    await with_module.write_samples([_sample(0)])
    await with_module.write_samples([_sample(1)])
    assert await series.lags()

    result = await script_only.write_samples([late])
    assert result.accepted == 0
    assert getattr(result, counted) == 1
    assert await series.head() == _record(0) + _record(1)

    result = await script_only.write_samples([_sample(2)])
    assert result.accepted == 1
    assert await series.head() == _record(0) + _record(1) + _record(2)


async def test_a_cut_that_empties_the_head_writes_the_entry(with_module: TelemetryStore) -> None:
    """Once the head is gone the entry is the only last record: the module's order check
    reads it, so an older sample must still be refused."""
    series = _Series(with_module)
    await with_module.write_samples([_sample(0)])
    await with_module.write_samples([_sample(1), _sample(2)])
    assert await series.last_entry() == _record(0) + _record(0)[:8]

    cuts = await with_module.metrics._writer.cut([(series.id, await series.head())], force=True)
    assert cuts == 1
    assert await series.head() == b""
    assert (await series.last_entry())[:16] == _record(2)

    result = await with_module.write_samples([_sample(1, 5.0)])
    assert (result.accepted, result.out_of_order) == (0, 1)
    result = await with_module.write_samples([_sample(3)])
    assert result.accepted == 1
    assert await series.last_entry() == _record(3) + _record(3)[:8]


async def test_a_cut_that_leaves_records_writes_the_entry_from_the_tail(
    with_module: TelemetryStore,
) -> None:
    series = _Series(with_module)
    await with_module.write_samples([_sample(0)])
    await with_module.write_samples([_sample(i) for i in range(1, 10)])  # 10: a chunk of 8
    head = await series.head()
    assert head == _record(8) + _record(9)  # the write's cut moved 8 records to a chunk
    assert await series.last_entry() == _record(9) + _record(8)[:8]


async def test_the_series_api_sees_samples_past_the_lagging_entry(
    with_module: TelemetryStore,
) -> None:
    """The entry says sample 0; the head ends at sample 3, inside the window."""
    series = _Series(with_module)
    await with_module.write_samples([_sample(0)])
    await with_module.write_samples([_sample(i) for i in (1, 2, 3)])
    assert await series.lags()
    assert (await series.last_entry())[:16] == _record(0)

    matchers = [[LabelMatcher("job", MatchType.EQUAL, "a")]]
    inside = await with_module.metrics.series(matchers, T0 + 2 * STEP + 1, T0 + 10 * STEP)
    assert inside.items == [{"__name__": "m", "job": "a"}]
    after = await with_module.metrics.series(matchers, T0 + 3 * STEP + 1, T0 + 10 * STEP)
    assert after.items == []
    names = await with_module.metrics.label_names(matchers, T0 + 3 * STEP, T0 + 10 * STEP)
    assert names == ["__name__", "job"]


async def test_a_call_without_last_lags_writes_every_entry(with_module: TelemetryStore) -> None:
    """``MESHFED.WRITE`` with an earlier version's arguments (no ``last_lags``, as its AOFs
    hold them) keeps writing the entry at every append."""
    series = _Series(with_module)
    await with_module.write_samples([_sample(0)])
    script_keys, constant = write_arguments(
        series.shard, cap_total=100, cap_tenant=100, max_samples=8, max_span_ms=3_600_000
    )
    sid = series.id.encode()
    labels = b'["__name__","m","job","a"]'
    entry = b"".join(
        (struct.pack(">H", len(sid)), sid, struct.pack(">I", 0), struct.pack(">I", len(labels)))
    )
    entry += labels + struct.pack(">I", 16) + _record(1)
    earlier = [COMMAND, *script_keys, *constant[:-1], entry]  # all but `last_lags`
    reply = await series.redis.execute_command(*earlier)
    assert reply[-7:-3] == [1, 0, 0, 0]  # accepted, ignored, out of order, conflicts
    assert await series.last_entry() == _record(1) + _record(0)[:8]
    assert not await series.lags()

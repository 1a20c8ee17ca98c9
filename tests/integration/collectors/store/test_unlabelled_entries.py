"""Entries without labels: once the module stored a series, ``write_series`` leaves its labels
out of later entries; a series gone from Redis is stored again, with its labels, by the script.

Differential, like test_write_module.py: the same columnar batches go to a store with the
module and to one with the script only; every ``WriteResult`` and, at the end, every key and
value must be equal. The writer's own state says which entries were sent without labels.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from collectors._core.component import WriteResult
from collectors._core.series_batch import SeriesBatch, SeriesLabels
from collectors.promql.source import LabelMatcher, MatchType
from collectors.store import keys
from collectors.store.metrics_module import installed_module
from collectors.store.store import TelemetryStore
from tests.helpers.native import require_redis_module
from tests.integration.collectors.store.conftest import small_settings
from tests.integration.collectors.store.test_write_module import _calls, _dump

T0 = 1_700_000_000_000
STEP = 15_000
JOBS = [SeriesLabels("m", {"job": f"j{i}", "cluster": f"c{i % 2}"}) for i in range(8)]
"""One object per series, reused by every batch (as the remote_write decoder does)."""


def _round(k: int, refs: list[SeriesLabels] = JOBS) -> SeriesBatch:
    return SeriesBatch(list(refs), list(range(len(refs) + 1)), [T0 + k * STEP] * len(refs),
                       [float(k + i) for i in range(len(refs))])  # fmt: skip


async def _store(root: Path, *, module: bool, cap: int) -> TelemetryStore:
    settings = small_settings(url=None, data_dir=root / "redis", write_module=module)
    limits = replace(settings.limits, max_series_total=cap, max_series_per_tenant=cap)
    store = TelemetryStore(settings=replace(settings, limits=limits))
    await store.start()
    return store


@pytest.fixture
async def pair(
    tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[TelemetryStore, TelemetryStore]]:
    require_redis_module(installed_module() is not None)
    cap = getattr(request, "param", 1000)
    with_module = await _store(tmp_path / "module", module=True, cap=cap)
    script_only = await _store(tmp_path / "script", module=False, cap=cap)
    yield with_module, script_only
    await with_module.shutdown()
    await script_only.shutdown()


def _unlabelled(store: TelemetryStore) -> set[str]:
    """Jobs whose next entries leave the labels out."""
    refs: dict[SeriesLabels, tuple[str, int, bytes]] = store.metrics._writer._refs
    return {ref.labels["job"] for ref, (_, _, prefix) in refs.items() if prefix.endswith(b"\0" * 4)}


def _labels_lengths(blob: bytes) -> list[int]:
    """The labels JSON length of every entry of a write argument (layout: ``WRITE_LUA``)."""
    out, pos = [], 0
    while pos < len(blob):
        tenant_at = pos + 2 + int.from_bytes(blob[pos : pos + 2], "big")
        labels_at = tenant_at + 4 + int.from_bytes(blob[tenant_at : tenant_at + 4], "big")
        labels = int.from_bytes(blob[labels_at : labels_at + 4], "big")
        records_at = labels_at + 4 + labels
        pos = records_at + 4 + int.from_bytes(blob[records_at : records_at + 4], "big")
        out.append(labels)
    return out


async def _both(pair: tuple[TelemetryStore, TelemetryStore], batch: SeriesBatch) -> WriteResult:
    with_module, script_only = pair
    got = await with_module.write_series(batch)
    assert got == await script_only.write_series(batch)
    return got


async def test_stored_series_are_sent_without_labels(
    pair: tuple[TelemetryStore, TelemetryStore],
) -> None:
    with_module, script_only = pair
    assert (await _both(pair, _round(0))).series_created == len(JOBS)
    assert _unlabelled(with_module) == {ref.labels["job"] for ref in JOBS}
    assert _unlabelled(script_only) == set()  # the script always gets labels
    # without the module nothing waits for a confirmation only the module gives
    assert script_only.metrics._writer._pending == {}
    writer = with_module.metrics._writer
    sent: list[bytes] = []
    write_calls = writer._write_calls

    async def recording(blobs: list[tuple[int, bytes]], clean: Any = None) -> WriteResult:
        sent.extend(blob for _, blob in blobs)
        return await write_calls(blobs, clean)

    writer._write_calls = recording
    for k in range(1, 4):
        assert (await _both(pair, _round(k))).accepted == len(JOBS)
    assert sent and all(length == 0 for blob in sent for length in _labels_lengths(blob))
    assert await _dump(with_module) == await _dump(script_only)
    assert await _calls(with_module, "evalsha") == 0


@pytest.mark.parametrize(
    "gone",
    [
        pytest.param("all", id="redis-lost-everything"),
        pytest.param("one-series", id="one-series-deleted"),
    ],
)
async def test_a_series_gone_from_redis_is_stored_again_with_its_labels(
    pair: tuple[TelemetryStore, TelemetryStore], gone: str
) -> None:
    for k in range(2):
        await _both(pair, _round(k))
    for store in pair:
        client: Any = store.connection.client
        if gone == "all":
            await client.flushall()
        else:  # what retention removes of a series: its entries, its head (not its postings)
            sid, shard, _ = store.metrics._writer._refs[JOBS[3]]
            for table in (keys.series_labels_key, keys.series_last_key, keys.series_first_key):
                await client.hdel(table(shard), sid)
            await client.srem(keys.series_all_key(shard), sid)
            await client.delete(keys.head_key(shard, sid))
    result = await _both(pair, _round(2))
    assert result.series_created == (len(JOBS) if gone == "all" else 1)
    with_module, script_only = pair
    assert await _dump(with_module) == await _dump(script_only)
    assert await _calls(with_module, "evalsha") > 0  # the script stored what the module left


@pytest.mark.parametrize("pair", [pytest.param(4, id="cap-of-4-series")], indirect=True)
async def test_refused_series_keep_their_labels(
    pair: tuple[TelemetryStore, TelemetryStore],
) -> None:
    """A call that refused a series confirms none of its shard's series (the reply counts
    refusals, it does not name them): they keep their labels until a clean write."""
    with_module, script_only = pair
    for k in range(3):
        result = await _both(pair, _round(k))
    assert result.series_refused > 0
    matcher = [LabelMatcher("__name__", MatchType.EQUAL, "m")]
    stored = {s.labels["job"] for s in await script_only.metrics.select(matcher, T0, T0 + 9 * STEP)}
    assert 0 < len(stored) < len(JOBS)
    assert _unlabelled(with_module) <= stored
    assert await _dump(with_module) == await _dump(script_only)

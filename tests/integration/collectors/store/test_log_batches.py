"""The batched log layout against real Redis: many records per stream entry, entry ids under
concurrent and same-millisecond writes, limit cuts across overlapping entries, and the
stream registry after a failed write (embedded Redis stopped and restarted)."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import Any

import pytest

from collectors._core.errors import StoreUnavailableError
from collectors._core.model import LogRecord
from collectors.store import keys
from collectors.store.config import StoreSettings
from collectors.store.logs import LogQuery, LogStore
from collectors.store.store import TelemetryStore
from collectors.store.trace_logs_settings import LogSettings

S = 1_000_000_000
MS = 1_000_000


def rec(t: int, body: str, *, tag: str = "app", cluster: str = "east") -> LogRecord:
    return LogRecord(time_unix_nano=t, body=body, tag=tag, resource={"cluster": cluster})


def ids_of(entries: list[Any]) -> list[tuple[int, int]]:
    return [tuple(map(int, e[0].split(b"-"))) for e in entries]  # type: ignore[misc]


@pytest.fixture
def client(store: TelemetryStore) -> Any:
    return store.connection.client


async def test_one_entry_carries_a_chunk_of_records(client: Any) -> None:
    store = LogStore(redis=client, settings=LogSettings(write_chunk=500))
    t0 = time.time_ns() - 60 * S
    await store.write_logs([rec(t0 + i * MS, f"line {i}") for i in range(1200)])
    assert await client.xlen(keys.log_stream_key("east", "app")) == 3
    result = await store.query(LogQuery(t0, t0 + 2 * S, limit=5000))
    assert [r.body for r in result.records] == [f"line {i}" for i in reversed(range(1200))]
    assert not result.truncated


@pytest.mark.parametrize(
    "writers", [pytest.param(1, id="sequential"), pytest.param(4, id="concurrent")]
)
async def test_same_millisecond_writes_get_growing_ids(client: Any, writers: int) -> None:
    stores = [LogStore(redis=client, settings=LogSettings()) for _ in range(writers)]
    t = time.time_ns() - 10 * S

    async def write(n: int) -> None:
        for b in range(6):
            await stores[n].write_logs([rec(t, f"w{n} b{b} r{i}") for i in range(3)])

    await asyncio.gather(*(write(n) for n in range(writers)))
    entries = await client.xrange(keys.log_stream_key("east", "app"))
    ids = ids_of(entries)
    assert len(ids) == 6 * writers and ids == sorted(set(ids))
    assert {ms for ms, _ in ids} == {t // MS}
    result = await stores[0].query(LogQuery(t - S, t + S, limit=1000))
    assert len(result.records) == 18 * writers


async def test_limit_takes_the_newest_across_overlapping_entries(client: Any) -> None:
    """Entries of 2 records shuffled in time: the entry ids do not order the records."""
    store = LogStore(redis=client, settings=LogSettings(write_chunk=2))
    t0 = time.time_ns() - 120 * S
    times = [t0 + i * 100 * MS for i in range(80)]
    random.Random(7).shuffle(times)
    await store.write_logs([rec(t, str(t)) for t in times])
    for limit in (1, 5, 30):
        result = await store.query(LogQuery(t0, t0 + 60 * S, limit=limit))
        assert [r.time_unix_nano for r in result.records] == sorted(times, reverse=True)[:limit]
        assert result.truncated


async def test_a_window_inside_an_entry_finds_its_records(client: Any) -> None:
    """The entry id is its earliest record; a window starting later still reaches it."""
    settings = LogSettings(max_future_skew_s=1, late_arrival_window_s=1, entry_span_ms=20_000)
    store = LogStore(redis=client, settings=settings)
    t0 = time.time_ns() - 120 * S
    await store.write_logs([rec(t0, "first"), rec(t0 + 15 * S, "later")])
    assert await client.xlen(keys.log_stream_key("east", "app")) == 1
    result = await store.query(LogQuery(t0 + 14 * S, t0 + 16 * S, limit=10))
    assert [r.body for r in result.records] == ["later"]


async def test_records_further_apart_than_the_span_split_entries(client: Any) -> None:
    store = LogStore(redis=client, settings=LogSettings(entry_span_ms=1_000))
    t0 = time.time_ns() - 120 * S
    await store.write_logs([rec(t0 + i * 600 * MS, f"r{i}") for i in range(6)])
    assert await client.xlen(keys.log_stream_key("east", "app")) == 3


async def test_stream_first_written_during_an_outage_is_registered_after_it(
    embedded_settings: StoreSettings, tmp_path: Path
) -> None:
    telemetry = TelemetryStore(settings=embedded_settings)
    await telemetry.start()
    try:
        embedded = telemetry.connection.embedded
        assert embedded is not None
        store = telemetry.logs
        now = time.time_ns()
        await embedded.stop()
        with pytest.raises(StoreUnavailableError):
            await store.write_logs([rec(now, "during outage", tag="outage")])
        await embedded.start()
        for _ in range(50):  # the client reconnects on its next command
            try:
                await store.write_logs([rec(now, "after outage", tag="outage")])
                break
            except StoreUnavailableError:
                await asyncio.sleep(0.1)
        result = await store.query(LogQuery(now - S, now + S, limit=10, tag="outage"))
        assert [r.body for r in result.records] == ["after outage"]
    finally:
        await telemetry.shutdown()

"""meshfed's Redis module against the Lua write script: same replies, same keys.

Each case writes the same batches twice, into two embedded Redis servers: one store uses
``MESHFED.WRITE`` (the module, with the script for what it leaves), the other only the
script (``redis.write_module: false``, the fallback). Every ``WriteResult`` and, at the end,
every key and its whole value must be equal; the module store must have served calls. The
module must be built (``make setup`` does it with the C compiler): where a compiler exists,
its absence fails these tests; only a machine without one skips them.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis.exceptions as rexc

from collectors._core.errors import ConfigError
from collectors._core.model import Sample
from collectors._core.series_batch import SeriesBatch, SeriesLabels
from collectors.store import embedded, keys
from collectors.store.chunks import RECORD_SIZE
from collectors.store.config import RedisSettings
from collectors.store.metrics_lua import write_arguments
from collectors.store.metrics_module import COMMAND, installed_module
from collectors.store.store import TelemetryStore
from tests.helpers.native import require_redis_module
from tests.integration.collectors.store.conftest import small_settings

T0 = 1_700_000_000_000
STEP = 15_000
Batch = list[tuple[str, int, float]]  # (job, timestamp, value)


def _samples(batch: Batch) -> list[Sample]:
    return [Sample("m", {"job": job}, ts, v) for job, ts, v in batch]


def _run(job: str, first: int, n: int, *, step: int = STEP, value: float = 1.0) -> Batch:
    return [(job, T0 + (first + i) * step, value + first + i) for i in range(n)]


CASES = [
    pytest.param([_run("a", 0, 3), _run("a", 3, 3) + _run("b", 0, 2)], id="known-and-new"),
    pytest.param([_run("a", 0, 3), _run("a", 2, 1)], id="duplicate-ignored"),
    pytest.param([_run("a", 0, 3), [("a", T0 + 2 * STEP, 99.0)]], id="duplicate-conflict"),
    pytest.param([_run("a", 0, 3), [("a", T0, 5.0), ("a", T0 + 9 * STEP, 5.0)]], id="out-of-order"),
    pytest.param(
        [_run("a", 0, 2)] + [_run("a", 2 + 3 * k, 3) for k in range(6)], id="cut-by-count"
    ),
    pytest.param(
        [_run("a", 0, 2, step=3_600_000), _run("a", 2, 2, step=3_600_000)], id="cut-by-span"
    ),
    pytest.param(
        [_run(job, 0, 1) for job in "abcdefgh"] + [[(j, T0 + STEP, 2.0) for j in "abcdefgh"]],
        id="many-series",
    ),
    pytest.param([_run("a", 0, 1), [("a", T0 + STEP, math.nan)]], id="nan-value"),
]


async def _store(root: Path, *, module: bool) -> TelemetryStore:
    settings = small_settings(url=None, data_dir=root / "redis", write_module=module)
    # 4 shards: per shard, at most 3 series in all and 2 per tenant (``cluster`` label).
    limits = replace(settings.limits, max_series_total=12, max_series_per_tenant=5)
    settings = replace(settings, limits=limits)
    store = TelemetryStore(settings=settings)
    await store.start()
    return store


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[TelemetryStore, TelemetryStore]]:
    require_redis_module(installed_module() is not None)
    with_module = await _store(tmp_path / "module", module=True)
    script_only = await _store(tmp_path / "script", module=False)
    yield with_module, script_only
    await with_module.shutdown()
    await script_only.shutdown()


async def _dump(store: TelemetryStore) -> dict[bytes, tuple[bytes, Any]]:
    """Every metrics key and its value, ``last`` entries as readers take them: where the
    module left one behind a non-empty head (``last_lags``), the head's tail and first
    timestamp; ``last_lags`` itself, which only the module sets, is left out."""
    client: Any = store.connection.client
    readers: dict[bytes, Callable[[bytes], Any]] = {
        b"string": client.get,
        b"hash": client.hgetall,
        b"set": client.smembers,
        b"zset": lambda k: client.zrange(k, 0, -1, withscores=True),
    }
    found: dict[bytes, tuple[bytes, Any]] = {}
    async for key in client.scan_iter(match=f"{keys.METRICS_PREFIX}*"):
        kind = await client.type(key)
        found[key] = (kind, await readers[kind](key))
    for shard in range(store.settings.chunks.shards):
        lags = found.pop(keys.series_last_lags_key(shard).encode(), None)
        last_key = keys.series_last_key(shard).encode()
        if lags is None or last_key not in found:
            continue
        entries: dict[bytes, bytes] = found[last_key][1]
        for sid in entries:
            _kind, head = found.get(keys.head_key(shard, sid.decode()).encode(), (b"", b""))
            if len(head) >= RECORD_SIZE:
                entries[sid] = head[-RECORD_SIZE:] + head[:8]
    return dict(found)


async def _calls(store: TelemetryStore, command: str = COMMAND) -> int:
    stats = await store.connection.client.info("commandstats")
    return int(stats.get(f"cmdstat_{command.lower()}", {}).get("calls", 0))


@pytest.mark.parametrize("batches", CASES)
async def test_module_and_script_store_the_same(
    pair: tuple[TelemetryStore, TelemetryStore], batches: list[Batch]
) -> None:
    with_module, script_only = pair
    for batch in batches:
        got = await with_module.write_samples(_samples(batch))
        want = await script_only.write_samples(_samples(batch))
        assert got == want
    assert await _dump(with_module) == await _dump(script_only)
    assert await _calls(with_module) > 0
    assert await _calls(script_only) == 0


async def test_series_over_the_cap_stay_refused(
    pair: tuple[TelemetryStore, TelemetryStore],
) -> None:
    with_module, script_only = pair
    batches = [_run(job, 0, 1) for job in "abcdefghij"] + [[(j, T0 + STEP, 1.0) for j in "aj"]]
    for batch in batches:
        assert await with_module.write_samples(_samples(batch)) == (
            await script_only.write_samples(_samples(batch))
        )
    assert await _dump(with_module) == await _dump(script_only)


async def test_caps_refuse_alike_per_reason_and_tenant(
    pair: tuple[TelemetryStore, TelemetryStore],
) -> None:
    """New series of several tenants past both caps: the same series created and refused,
    counted per reason and tenant, in one call and over several."""
    one_tenant = [Sample("m", {"job": f"t{i}", "cluster": "c0"}, T0, 1.0) for i in range(12)]
    series = [(f"j{i}", f"c{i % 3}") for i in range(40)]
    one_call = [Sample("m", {"job": j, "cluster": c}, T0, 1.0) for j, c in series[:20]]
    later = [[Sample("m", {"job": j, "cluster": c}, T0, 1.0)] for j, c in series[20:]]
    with_module, script_only = pair
    for batch in [one_tenant, one_call, *later, one_call]:
        got = await with_module.write_samples(batch)
        assert got == await script_only.write_samples(batch)
    assert got.series_refused > 0
    assert await _dump(with_module) == await _dump(script_only)
    assert await _calls(with_module, "evalsha") == 0


ESCAPED = ['q"uote', "back\\slash", "new\nline", "tab\t"]
"""Label values that ``json.dumps`` escapes: quote, backslash, control characters."""


@pytest.mark.parametrize(
    "jobs",
    [
        pytest.param(["plain", *ESCAPED, "é-unicode"], id="escapes-under-the-cap"),
        pytest.param(["a", ESCAPED[0], "b", "c", ESCAPED[1], "d", "e", "f", "g"], id="at-the-cap"),
    ],
)
async def test_labels_with_json_escapes_go_to_the_script(
    pair: tuple[TelemetryStore, TelemetryStore], jobs: list[str]
) -> None:
    """The module leaves a new series whose labels JSON holds an escape, and the new series
    after it in the call, to the script: the caps still see them in batch order."""
    with_module, script_only = pair
    for ts in (T0, T0 + STEP):
        batch = [Sample("m", {"job": job}, ts, 1.0) for job in jobs]
        assert await with_module.write_samples(batch) == await script_only.write_samples(batch)
    assert await _dump(with_module) == await _dump(script_only)
    assert await _calls(with_module, "evalsha") > 0


@pytest.mark.parametrize("drop_head", [False, True], ids=["with-head", "without-head"])
async def test_older_last_entries_are_rewritten_alike(
    pair: tuple[TelemetryStore, TelemetryStore], drop_head: bool
) -> None:
    """A 16-byte ``last`` entry (older versions): the module reads its series' head instead,
    or leaves it to the script when there is no head; both rewrite it in the 24-byte form."""
    for store in pair:
        await store.write_samples(_samples(_run("a", 0, 2)))
        client: Any = store.connection.client
        for shard in range(store.settings.chunks.shards):
            last = keys.series_last_key(shard)
            for sid, entry in (await client.hgetall(last)).items():
                await client.hset(last, sid, entry[:16])
                if drop_head:
                    await client.delete(keys.head_key(shard, sid.decode()))
    with_module, script_only = pair
    batch = _samples(_run("a", 2, 2))
    assert await with_module.write_samples(batch) == await script_only.write_samples(batch)
    assert await _dump(with_module) == await _dump(script_only)


def _write_args(shard: int) -> list[object]:
    """``MESHFED.WRITE``'s arguments before the batch: the write script's KEYS and ARGV."""
    script_keys, args = write_arguments(
        shard, cap_total=100, cap_tenant=100, max_samples=8, max_span_ms=60_000
    )
    return [COMMAND, *script_keys, *args]


COMMANDS = [
    pytest.param(_write_args(0), [[], 0, 0, 0, 0, 0, 0, 0], id="write"),
    pytest.param(
        ["MESHFED.APPEND", keys.series_last_key(0), keys.head_prefix(0), 8, 60_000],
        [[], 0, 0, 0, 0],
        id="append-of-older-aofs",
    ),
]


@pytest.mark.parametrize(("command", "nothing"), COMMANDS)
@pytest.mark.parametrize(
    ("batch", "error"),
    [
        pytest.param(b"\x00\x05abc", "malformed", id="truncated-id"),
        pytest.param(
            b"\x00\x01a" + b"\x00\x00\x00\x00" * 2 + b"\x00\x00\x00\x05xxxxx",
            "malformed",
            id="partial-record",
        ),
        pytest.param(b"", None, id="empty"),
    ],
)
async def test_malformed_batches_change_nothing(
    pair: tuple[TelemetryStore, TelemetryStore],
    command: list[object],
    nothing: list[object],
    batch: bytes,
    error: str | None,
) -> None:
    with_module, _ = pair
    client: Any = with_module.connection.client
    args = [*command, batch]
    if error is None:
        assert await client.execute_command(*args) == nothing
    else:
        with pytest.raises(rexc.ResponseError, match=error):
            await client.execute_command(*args)
    assert await _dump(with_module) == {}


async def test_a_head_of_another_type_is_refused(
    pair: tuple[TelemetryStore, TelemetryStore],
) -> None:
    with_module, _ = pair
    await with_module.write_samples(_samples(_run("a", 0, 1)))
    client: Any = with_module.connection.client
    heads = [k async for k in client.scan_iter(match=f"{keys.METRICS_PREFIX}*:h:*")]
    assert len(heads) == 1
    await client.delete(heads[0])
    await client.sadd(heads[0], "x")
    with pytest.raises(rexc.ResponseError, match="WRONGTYPE"):
        await with_module.write_samples(_samples(_run("a", 1, 1)))


def test_settings_default_to_the_module() -> None:
    assert RedisSettings().write_module is True


async def test_a_server_without_the_module_gets_the_script(
    pair: tuple[TelemetryStore, TelemetryStore],
) -> None:
    """The module unloaded under a running store (as a server restarted without it): the
    refused calls go to the script, nothing is lost or counted twice, later writes too."""
    with_module, script_only = pair
    batches = [
        _run("a", 0, 2) + _run("b", 0, 2),
        _run("a", 2, 2) + _run("b", 2, 2),
        _run("a", 4, 1),
    ]
    got = [await with_module.write_samples(_samples(batches[0]))]
    await with_module.connection.client.execute_command("MODULE", "UNLOAD", "meshfed")
    got += [await with_module.write_samples(_samples(b)) for b in batches[1:]]
    assert got == [await script_only.write_samples(_samples(b)) for b in batches]
    assert await _dump(with_module) == await _dump(script_only)


async def test_an_aof_with_module_commands_needs_the_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Restarted without the module, the embedded Redis cannot replay the AOF: the store
    says so, with the fix, instead of retrying for ever."""
    require_redis_module(installed_module() is not None)
    store = await _store(tmp_path, module=True)
    await store.write_samples(_samples(_run("a", 0, 2)))
    await store.write_samples(_samples(_run("a", 2, 2)))  # a known series: the module wrote
    assert await _calls(store) > 0
    await store.shutdown()
    monkeypatch.setattr(embedded, "installed_module", lambda: None)
    with pytest.raises(ConfigError, match="make setup"):
        await _store(tmp_path, module=True)


async def test_a_run_without_samples_is_no_malformed_batch(
    pair: tuple[TelemetryStore, TelemetryStore],
) -> None:
    """A columnar batch may hold a run without samples (a known or a new series): the
    module must take it as the script does, not refuse the whole batch."""
    a, b, c = (SeriesLabels("m", {"job": job}) for job in "abc")
    batches = [
        SeriesBatch([a, b], [0, 1, 2], [T0, T0], [1.0, 2.0]),
        SeriesBatch([a, b, c], [0, 0, 1, 1], [T0 + STEP], [3.0]),
    ]
    with_module, script_only = pair
    for batch in batches:
        assert await with_module.write_series(batch) == await script_only.write_series(batch)
    assert await _dump(with_module) == await _dump(script_only)
    assert await _calls(with_module) > 0

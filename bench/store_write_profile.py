"""Profile: where Redis's CPU goes when the store writes samples of existing series.

Not a benchmark of a shipped path: besides the write script as shipped (``base``), each
variant runs a copy of it with one part removed, to measure that part's cost. A removed part
breaks a guarantee (order checks, span cuts, the heads themselves), so the variants exist
only here. Batches of SERIES existing series x PER_SERIES samples (varied values and
timestamps) go through ``TelemetryStore.metrics.write_series`` into a fresh embedded Redis
(``appendfsync always``, the default); Python CPU from ``time.process_time``, Redis CPU from
``INFO cpu``, both per sample. Results: docs/benchmarks.md, remote_write section.

    .venv/bin/python bench/store_write_profile.py --series 2000 --per-series 1 --batches 30
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import collectors.store.metrics_lua as lua
import collectors.store.metrics_write as write
from collectors._core.series_batch import SeriesBatch, SeriesLabels
from collectors.store.config import RedisSettings, StoreSettings
from collectors.store.store import TelemetryStore

_APPEND = "local count = redis.call('APPEND', head, data) / 16"
_HSET_LAST = "each_slice(new_last, 2 * SLICE, hset(last_key))"
_HMGET = "local got = redis.call('HMGET', last_key, unpack(sids, i, math.min(i + SLICE - 1, m)))"
_RESULT = "local result = {accepted"
VARIANTS: dict[str, list[tuple[str, str]]] = {
    "base": [],
    "no-hset-last": [(_HSET_LAST, "")],
    "no-hmget-last": [(_HMGET, "local got = {}")],
    "no-append": [(_APPEND, "local count = 1")],
    "one-log-append": [
        (_APPEND, "LOG[#LOG + 1] = sid; LOG[#LOG + 1] = data; local count = 1"),
        ("local SLICE = 500", "local SLICE = 500\nlocal LOG = {}"),
        (_RESULT, "if #LOG > 0 then redis.call('APPEND', head_p .. 'log', table.concat(LOG)) end\n"
                  + _RESULT),
    ],
    "no-append-no-hset-last": [(_APPEND, "local count = 1"), (_HSET_LAST, "")],
}  # fmt: skip


def script_for(variant: str) -> lua.Script:
    source = lua.WRITE_LUA
    for old, new in VARIANTS[variant]:
        assert old in source, f"{variant}: the write script changed; update this profile"
        source = source.replace(old, new)
    return lua.Script(source)


async def run(args: argparse.Namespace, variant: str) -> str:
    write.WRITE = script_for(variant)  # what SampleWriter calls
    data = tempfile.mkdtemp(prefix="meshfed-profile-")
    store = TelemetryStore(settings=StoreSettings(redis=RedisSettings(data_dir=Path(data))))
    await store.start()
    for assignment in args.redis_config:
        name, _, value = assignment.partition("=")
        await store.connection.client.config_set(name, value)
    rng = random.Random(1)
    series = [
        SeriesLabels("bench_metric", {"job": f"j{i % 10}", "instance": f"i{i}"})
        for i in range(args.series)
    ]

    def batch(b: int) -> SeriesBatch:
        ts: list[int] = []
        vs: list[float] = []
        offsets = [0]
        for _ in series:
            for j in range(args.per_series):
                ts.append(1_700_000_000_000 + (b * args.per_series + j) * 15_000)
                vs.append(rng.random() * 100)
            offsets.append(len(ts))
        return SeriesBatch(list(series), offsets, ts, vs)

    try:
        await store.metrics.write_series(batch(0))  # creates the series
        batches = [batch(b) for b in range(1, args.batches + 1)]
        client = store.connection.client

        async def redis_cpu() -> float:
            info = await client.info("cpu")
            return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

        c0, p0, w0 = await redis_cpu(), time.process_time(), time.perf_counter()
        for b in batches:
            await store.metrics.write_series(b)
        c1, p1, w1 = await redis_cpu(), time.process_time(), time.perf_counter()
    finally:
        await store.shutdown()
    n = sum(len(b) for b in batches)
    return (
        f"{variant:24s} redis {1e6 * (c1 - c0) / n:5.2f} us/sample  python"
        f" {1e6 * (p1 - p0) / n:5.2f} us/sample  wall {n / (w1 - w0):9,.0f} samples/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=2000)
    parser.add_argument("--per-series", type=int, default=1, help="samples per series per batch")
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument(
        "--redis-config",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="CONFIG SET on the embedded Redis before writing (repeatable)",
    )
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}; cores: {os.cpu_count()}")
    for variant in args.variants:
        print(asyncio.run(run(args, variant)), flush=True)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()

"""Benchmark: trace-by-id latency (p50/p99) with millions of spans stored. Goal: p99 <= 10 ms.

Usage: .venv/bin/python bench/trace_by_id.py [--spans 1000000] [--writers 1] [--reads 2000]
       [--passes 3] [--max-redis-mb 5500] [--max-write-s 3600] [--tmp DIR]
       [--redis-url redis://... | redis+cluster://...]
       (default: the embedded Redis, with its production AOF settings, in a temporary directory)

The spans are varied (see ``bench/trace_by_id_spans.py``) and their start times spread over
the last 48 h, so the search indexes cover 48 hourly buckets. ``--writers`` processes (as
several collectors would) each write their share in batches of ~1000 spans through the
production path, ``TraceStore.write_spans``, one write in flight while the next batch is
built; 15 % of traces have their last spans in the next batch (the trace is then two stored
batches, as when a collector flushes mid-trace). Writing stops early, saying so, when Redis
``used_memory`` passes ``--max-redis-mb`` or after ``--max-write-s``.

Reads: ``--passes`` passes of ``--reads`` reads, one at a time, of trace ids drawn uniformly
over every written trace, plus 5 % ids never written; every answer is checked (span count,
trace id). Printed: load average and free memory before/after, write rate, Redis
``used_memory`` and bytes per span as the store grows, per-pass p50/p99/max and their
medians, the reader's CPU time per read (not inflated by waiting for a core), and two
floors on the same server: the same reads as a bare ``LRANGE`` from this Python client (no
decoding) and ``redis-benchmark -c 1`` running ``LRANGE`` of one stored trace (C client).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from trace_by_id_spans import IdStream, Universe, make_trace, replay

from collectors._core.model import Span, TraceId
from collectors.store import keys
from collectors.store.config import RedisSettings, StoreSettings
from collectors.store.store import TelemetryStore

NS = 1_000_000_000
SPREAD_S = 48 * 3600
MISSING_SHARE = 0.05
SPLIT_SHARE = 0.15
PROGRESS_KEY = "bench:trace_by_id:spans"  # a counter the writers bump; a few bytes
CHECK_EVERY = 20  # batches between a writer's progress / memory / time checks


async def used_mb(client: Any) -> float:
    return int((await client.info("memory"))["used_memory"]) / 2**20


def machine() -> str:
    free = subprocess.run(["free", "-m"], capture_output=True, text=True, check=False).stdout
    avail = re.search(r"Mem:\s+(\d+)\s+\d+\s+\d+\s+\d+\s+\d+\s+(\d+)", free)
    mem = f"{avail.group(2)} MiB available of {avail.group(1)}" if avail else "free: n/a"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"load average {load}, {os.cpu_count()} cores, {mem}"


async def _write(url: str, w: int, share: int, t_end: int, cap_mb: int, cap_s: float) -> int:
    """Writer ``w``: ``share`` spans (or fewer, at a cap); returns the traces it wrote."""
    store = TelemetryStore(settings=StoreSettings(redis=RedisSettings(url=url)))
    await store.start()
    client: Any = store.connection.client
    rng = random.Random(1000 + w)
    u = Universe(random.Random(1))
    ids = IdStream(w)
    traces = written = reported = batches = 0
    carry: list[Span] = []
    pending: asyncio.Future[None] | None = None
    started = time.monotonic()
    try:
        while written < share:
            batch, carry = carry, []
            while len(batch) < 1000:
                tid, count = ids.next()
                start = t_end - int(SPREAD_S * NS * (1 - (written + len(batch)) / share))
                spans = make_trace(u, rng, TraceId(f"{tid:032x}"), count, start)
                traces += 1
                if rng.random() < SPLIT_SHARE:
                    cut = rng.randint(1, count - 1)
                    batch.extend(spans[:cut])
                    carry.extend(spans[cut:])
                else:
                    batch.extend(spans)
            if pending is not None:
                await pending
            pending = asyncio.ensure_future(store.traces.write_spans(batch))
            written += len(batch)
            batches += 1
            if batches % CHECK_EVERY == 0:
                await pending
                pending = None
                await client.incrby(PROGRESS_KEY, written - reported)
                reported = written
                if await used_mb(client) > cap_mb or time.monotonic() - started > cap_s:
                    break
        if pending is not None:
            await pending
        if carry:
            await store.traces.write_spans(carry)
            written += len(carry)
        await client.incrby(PROGRESS_KEY, written - reported)
        return traces
    finally:
        await store.shutdown()


def writer(url: str, w: int, share: int, t_end: int, cap_mb: int, cap_s: float) -> int:
    return asyncio.run(_write(url, w, share, t_end, cap_mb, cap_s))


async def write_all(store: TelemetryStore, url: str, args: argparse.Namespace) -> list[int]:
    """Runs the writers, printing progress; returns the traces each writer wrote."""
    client: Any = store.connection.client
    base_mb = await used_mb(client)
    share = args.spans // args.writers
    cap_mb = int(base_mb + args.max_redis_mb)
    t_end = time.time_ns() - 60 * NS
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    with ProcessPoolExecutor(args.writers, mp_context=multiprocessing.get_context("spawn")) as ex:
        futures = [
            loop.run_in_executor(ex, writer, url, w, share, t_end, cap_mb, args.max_write_s)
            for w in range(args.writers)
        ]
        next_report = 500_000
        while not all(f.done() for f in futures):
            await asyncio.wait(futures, timeout=5)
            written = int(await client.get(PROGRESS_KEY) or 0)
            if written >= next_report or all(f.done() for f in futures):
                took = time.perf_counter() - started
                mb = await used_mb(client) - base_mb
                print(
                    f"  {written:>11,} spans {took:6.0f} s {written / took:7,.0f} spans/s"
                    f"  used_memory +{mb:6.0f} MiB = {mb * 2**20 / max(written, 1):4.0f} B/span"
                    f"  ({machine()})",
                    flush=True,
                )
                next_report = (written // 500_000 + 1) * 500_000
        traces = [f.result() for f in futures]
    took = time.perf_counter() - started
    written = int(await client.get(PROGRESS_KEY) or 0)
    mb = await used_mb(client) - base_mb
    if written < share * args.writers:
        print(f"STOPPED EARLY at a cap (--max-redis-mb {args.max_redis_mb} / --max-write-s)")
    print(f"wrote {written:,} spans ({sum(traces):,} traces) in {took:.0f} s with {args.writers}")
    print(f"  writer(s): {written / took:,.0f} spans/s; Redis used_memory +{mb:,.0f} MiB")
    print(f"  = {mb * 2**20 / written:.0f} bytes per span (index and key overhead included)")
    return traces


def pick(rng: random.Random, trace_ids: list[int], counts: bytearray) -> tuple[TraceId, int]:
    """A random written trace (and its span count) or, 5 % of the time, an unknown id."""
    if rng.random() < MISSING_SHARE:
        return TraceId(f"{rng.getrandbits(128) & ~1:032x}"), 0  # written ids are odd
    i = rng.randrange(len(trace_ids))
    return TraceId(f"{trace_ids[i]:032x}"), counts[i]


def percentiles(ms: list[float]) -> tuple[float, float, float]:
    ms = sorted(ms)
    return statistics.median(ms), ms[max(0, int(len(ms) * 0.99) - 1)], ms[-1]


async def read_pass(
    read: Callable[[TraceId], Awaitable[int]],
    rng: random.Random,
    trace_ids: list[int],
    counts: bytearray,
    reads: int,
) -> tuple[list[float], list[float], float]:
    """Latencies (ms) of found and of unknown traces, and this process's CPU time (ms) per
    read, which waiting for a core does not inflate; every answer is checked."""
    found: list[float] = []
    missing: list[float] = []
    cpu = time.process_time()
    for _ in range(reads):
        tid, expected = pick(rng, trace_ids, counts)
        t = time.perf_counter()
        got = await read(tid)
        took = (time.perf_counter() - t) * 1000
        if got != expected:
            raise AssertionError(f"trace {tid}: {got} spans read, {expected} written")
        (found if expected else missing).append(took)
    return found, missing, (time.process_time() - cpu) * 1000 / reads


def redis_benchmark_floor(socket: str, key: str) -> str:
    tool = shutil.which("redis-benchmark")
    if tool is None:
        return "redis-benchmark not installed"
    out = subprocess.run(
        [tool, "-s", socket, "-c", "1", "-n", "20000", "--csv", "LRANGE", key, "0", "2000"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    ).stdout
    rows = [line.replace('"', "").split(",") for line in out.splitlines() if line.strip()]
    if len(rows) < 2 or len(rows[1]) < 8:
        return f"redis-benchmark gave no figures: {out[-200:]!r}"
    row = dict(zip(rows[0], rows[1], strict=False))
    return (
        f"p50 {float(row['p50_latency_ms']):.3f} ms, p99 {float(row['p99_latency_ms']):.3f} ms,"
        f" max {float(row['max_latency_ms']):.3f} ms ({float(row['rps']):,.0f} req/s)"
    )


async def read_all(store: TelemetryStore, args: argparse.Namespace, traces: list[int]) -> None:
    client: Any = store.connection.client
    trace_ids: list[int] = []
    counts = bytearray()
    for w, n in enumerate(traces):
        ids, c = replay(w, n)
        trace_ids += ids
        counts += c

    async def by_id(tid: TraceId) -> int:
        result = await store.traces.get_trace(tid)
        if any(s.trace_id != tid for s in result.spans) or result.truncated:
            raise AssertionError(f"trace {tid}: wrong or truncated answer")
        return len(result.spans)

    p50s, p99s = [], []
    for p in range(args.passes):
        found, missing, cpu_ms = await read_pass(
            by_id, random.Random(100 + p), trace_ids, counts, args.reads
        )
        p50, p99, top = percentiles(found)
        p50s.append(p50)
        p99s.append(p99)
        m50, m99, _ = percentiles(missing)
        print(
            f"pass {p + 1}: {len(found)} traces p50 {p50:.2f} ms, p99 {p99:.2f} ms,"
            f" max {top:.2f} ms; {len(missing)} unknown ids p50 {m50:.2f} ms,"
            f" p99 {m99:.2f} ms; client CPU {cpu_ms:.2f} ms/read  ({machine()})",
            flush=True,
        )
    print(
        f"trace by id, median of {args.passes} passes: p50 {statistics.median(p50s):.2f}"
        f" ms, p99 {statistics.median(p99s):.2f} ms (goal p99 <= 10 ms)"
    )
    raw_ms = []
    rng = random.Random(100)
    for _ in range(args.reads):
        tid, _expected = pick(rng, trace_ids, counts)
        t = time.perf_counter()
        await client.lrange(keys.trace_spans_key(tid), 0, 2000)
        raw_ms.append((time.perf_counter() - t) * 1000)
    r50, r99, rmax = percentiles(raw_ms)
    print(
        f"floor, bare LRANGE from this client (pass 1's ids, no decoding): p50"
        f" {r50:.2f} ms, p99 {r99:.2f} ms, max {rmax:.2f} ms"
    )
    embedded = store.connection.embedded
    if embedded is not None:
        key = keys.trace_spans_key(TraceId(f"{trace_ids[len(trace_ids) // 2]:032x}"))
        floor = redis_benchmark_floor(embedded.url.removeprefix("unix://"), key)
        print(f"floor, redis-benchmark -c 1 LRANGE of one stored trace: {floor}")


async def main(args: argparse.Namespace) -> None:
    print(f"before: {machine()}", flush=True)
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        settings = StoreSettings(redis=RedisSettings(url=args.redis_url, data_dir=Path(tmp)))
        store = TelemetryStore(settings=settings)
        await store.start()
        try:
            embedded = store.connection.embedded
            url = embedded.url if embedded is not None else str(args.redis_url)
            await store.connection.client.delete(PROGRESS_KEY)
            traces = await write_all(store, url, args)
            await read_all(store, args, traces)
        finally:
            await store.shutdown()
    print(f"after: {machine()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--writers", type=int, default=1)
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--max-redis-mb", type=int, default=5500)
    parser.add_argument("--max-write-s", type=float, default=3600)
    parser.add_argument("--redis-url", default=None)
    parser.add_argument("--tmp", default=None, help="parent of the embedded Redis directory")
    asyncio.run(main(parser.parse_args()))

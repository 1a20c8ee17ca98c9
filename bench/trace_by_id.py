"""Benchmark: trace-by-id latency (p50/p99) with many spans stored. Goal: p99 <= 10 ms at 1M.

Usage: .venv/bin/python bench/trace_by_id.py [--spans 1000000] [--per-trace 10] [--reads 2000]
       [--redis-url redis://127.0.0.1:6379 | redis+cluster://...]   (default: embedded Redis)
Writes ``spans / per-trace`` traces in batches of 1000 spans through ``TraceStore.write_spans``,
then reads random traces by id one at a time and prints the latency percentiles.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path

from collectors._core.model import Span, SpanId, SpanKind, TraceId
from collectors.store.config import RedisSettings, StoreSettings
from collectors.store.store import TelemetryStore


def make_trace(n: int, per_trace: int, t0: int) -> list[Span]:
    tid = TraceId(f"{n + 1:032x}")
    return [
        Span(
            trace_id=tid,
            span_id=SpanId(f"{n * per_trace + i + 1:016x}"),
            parent_span_id=SpanId(f"{n * per_trace + 1:016x}") if i else None,
            name=f"op-{i}",
            start_time_unix_nano=t0 + n * 1000 + i,
            end_time_unix_nano=t0 + n * 1000 + i + 5_000_000,
            kind=SpanKind.SERVER if i == 0 else SpanKind.CLIENT,
            attributes={"http.method": "GET", "http.status_code": 200, "i": i},
            resource={"service.name": f"svc-{i % 5}", "cluster": "bench"},
        )
        for i in range(per_trace)
    ]


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = StoreSettings(
            redis=RedisSettings(url=args.redis_url, data_dir=Path(tmp) / "redis")
        )
        store = TelemetryStore(settings=settings)
        await store.start()
        try:
            traces = args.spans // args.per_trace
            t0 = time.time_ns() - 1800 * 1_000_000_000
            started = time.perf_counter()
            batch: list[Span] = []
            for n in range(traces):
                batch.extend(make_trace(n, args.per_trace, t0))
                if len(batch) >= 1000:
                    await store.traces.write_spans(batch)
                    batch = []
            if batch:
                await store.traces.write_spans(batch)
            elapsed = time.perf_counter() - started
            print(f"wrote {traces * args.per_trace} spans in {elapsed:.1f} s")
            rng = random.Random(1)
            latencies = []
            for _ in range(args.reads):
                tid = TraceId(f"{rng.randrange(traces) + 1:032x}")
                t = time.perf_counter()
                result = await store.traces.get_trace(tid)
                latencies.append((time.perf_counter() - t) * 1000)
                assert len(result.spans) == args.per_trace
            latencies.sort()
            p99 = latencies[int(len(latencies) * 0.99) - 1]
            print(
                f"trace by id over {args.reads} reads: p50 {statistics.median(latencies):.2f} ms,"
                f" p99 {p99:.2f} ms, max {latencies[-1]:.2f} ms (goal p99 <= 10 ms)"
            )
        finally:
            await store.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--per-trace", type=int, default=10)
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--redis-url", default=None)
    asyncio.run(main(parser.parse_args()))

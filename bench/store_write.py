"""Write-path benchmark of the metrics store (not run in CI).

Prints samples written per second, bytes per sample in Redis (``INFO memory`` delta), the
read rate of a full-range select, and ``redis-benchmark -P 64 -t set`` against the same
server for the ratio. Usage: ``python bench/store_write.py [--series 1000] [--samples 600]
[--url redis://...] [--columnar]`` (no URL: the embedded server in a temporary directory;
``--columnar``: the same samples as ``SeriesBatch`` runs through ``write_series``, the
remote_write path).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from collectors._core.model import Sample
from collectors._core.series_batch import SeriesBatch, SeriesLabels
from collectors.promql.source import LabelMatcher, MatchType
from collectors.store.config import RedisSettings, StoreSettings
from collectors.store.store import TelemetryStore

T0 = 1_700_000_000_000


def _columns(pending: list[Sample], interned: dict[int, SeriesLabels]) -> SeriesBatch:
    """``pending`` as one-sample runs, one ``SeriesLabels`` per label dict (as a receiver
    interns them); built outside the timed part."""
    runs = [interned.setdefault(id(s.labels), SeriesLabels(s.name, s.labels)) for s in pending]
    offsets = list(range(len(pending) + 1))
    return SeriesBatch(runs, offsets, [s.timestamp_ms for s in pending], [s.value for s in pending])


async def _write(store: TelemetryStore, batch: list[Sample] | SeriesBatch) -> tuple[int, float]:
    started = time.perf_counter()
    if isinstance(batch, SeriesBatch):
        result = await store.write_series(batch)
    else:
        result = await store.write_samples(batch)
    return result.accepted, time.perf_counter() - started


async def run(series: int, samples: int, batch: int, url: str | None, columnar: bool) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="mf-bench-"))
    store = TelemetryStore(settings=StoreSettings(redis=RedisSettings(url=url, data_dir=data_dir)))
    await store.start()
    client: Any = store.connection.client
    try:
        before = int((await client.info("memory"))["used_memory"])
        rng = random.Random(1)
        labels = [
            {"job": f"job{i % 10}", "instance": f"10.0.{i // 250}.{i % 250}:9090", "cluster": "c1"}
            for i in range(series)
        ]
        counters = [0.0] * series
        written = 0
        elapsed = 0.0
        pending: list[Sample] = []
        interned: dict[int, SeriesLabels] = {}
        for step in range(samples):
            ts = T0 + step * 15_000
            for i in range(series):
                counters[i] += rng.randint(0, 20) if i % 2 else 0
                pending.append(Sample("http_requests_total", labels[i], ts, counters[i]))
                if len(pending) >= batch:
                    n, took = await _write(
                        store, _columns(pending, interned) if columnar else pending
                    )
                    written += n
                    elapsed += took
                    pending = []
        if pending:
            n, took = await _write(store, _columns(pending, interned) if columnar else pending)
            written += n
            elapsed += took
        after = int((await client.info("memory"))["used_memory"])
        print(f"samples written     {written}")
        print(f"write rate          {written / elapsed:,.0f} samples/s")
        print(f"bytes per sample    {(after - before) / written:.2f} (INFO used_memory delta)")
        started = time.perf_counter()
        found = await store.metrics.select(
            [LabelMatcher("__name__", MatchType.EQUAL, "http_requests_total")],
            T0,
            T0 + samples * 15_000,
        )
        took = time.perf_counter() - started
        points = sum(len(s.timestamps_ms) for s in found)
        print(f"select all          {points} samples in {took:.2f} s ({points / took:,.0f}/s)")
        embedded = store.connection.embedded
        target = ["-s", embedded.url.removeprefix("unix://")] if embedded else []
        tool = shutil.which("redis-benchmark")
        if tool and embedded:
            out = subprocess.run(
                [tool, *target, "-P", "64", "-t", "set", "-n", "500000", "-q"],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            ).stdout
            match = re.search(r"SET: ([\d.]+) requests per second", out.replace("\r", "\n"))
            if match:
                limit = float(match.group(1))
                print(f"redis-benchmark     {limit:,.0f} SET/s pipelined (-P 64)")
                print(f"ratio               {written / elapsed / limit:.2f} samples per SET")
    finally:
        await store.shutdown()
        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=600, help="samples per series")
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--url", default=None)
    parser.add_argument(
        "--columnar", action="store_true", help="write_series (SeriesBatch) instead of Samples"
    )
    args = parser.parse_args()
    asyncio.run(run(args.series, args.samples, args.batch, args.url, args.columnar))


if __name__ == "__main__":
    main()

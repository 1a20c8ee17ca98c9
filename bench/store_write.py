"""Write-path benchmark of the metrics store (not run in CI).

Prints samples written per second, bytes per sample in Redis (``INFO memory`` delta), the
read rate of a full-range select, ``redis-benchmark -P 64 -t set`` against the same server
for the ratio, and — measured in the same run on the same samples — Prometheus 2.42's own
bytes per sample: the samples are sent by remote_write to a real ``prometheus
--web.enable-remote-write-receiver --web.enable-admin-api``, whose head is then written out
as a TSDB block by ``POST /api/v1/admin/tsdb/snapshot`` (a snapshot of the head is the same
compressed chunks and index a compaction writes); its chunk files and its whole block are
measured. The samples are realistic, not flattering: timestamps are 15 s scrapes with
up to ±``--jitter-ms`` of jitter, and values are a mix of counters with varying rates
(40 %), float gauges in random walks (40 %), slowly moving histogram-bucket counters (10 %)
and constants such as ``up`` (10 %). The load average is printed before and after.
Usage: ``python bench/store_write.py [--series 1000] [--samples 600] [--jitter-ms 300]
[--url redis://...] [--columnar] [--no-prometheus]`` (no URL: the embedded server in a
temporary directory; ``--columnar``: the same samples as ``SeriesBatch`` runs through
``write_series``, the remote_write path).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cramjam
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collectors._core.model import Sample
from collectors._core.series_batch import SeriesBatch, SeriesLabels
from collectors.promql.source import LabelMatcher, MatchType
from collectors.store.config import RedisSettings, StoreSettings
from collectors.store.store import TelemetryStore
from tests.helpers.processes import free_port, stop, wait_http_ok
from tests.helpers.remote_write import HEADERS, Series, encode_write_request

SCRAPE_MS = 15_000


def sample_values(series: int, samples: int, rng: random.Random) -> list[list[float]]:
    """Per series its ``samples`` values: 40 % counters with varying rates, 40 % float
    gauges in random walks, 10 % bucket-like counters that rarely move, 10 % constants."""
    out: list[list[float]] = []
    for i in range(series):
        kind = i % 10
        values: list[float] = []
        v = rng.uniform(0, 1e6) if kind < 4 else rng.uniform(0, 100)
        rate = rng.uniform(0.5, 200)
        for _ in range(samples):
            if kind < 4:
                v += max(0, round(rng.gauss(rate, rate / 3)))
            elif kind < 8:
                v = max(0.0, v + rng.gauss(0, 2.5))
            elif kind == 8:
                v += 1 if rng.random() < 0.05 else 0
            values.append(v if kind != 9 else 1.0)
        out.append(values)
    return out


def timestamps(
    series: int, samples: int, t0: int, jitter: int, rng: random.Random
) -> list[list[int]]:
    """Per series its scrape times: every ``SCRAPE_MS`` from a per-series offset, ± jitter."""
    out = []
    for _ in range(series):
        offset = rng.randrange(SCRAPE_MS)
        out.append(
            [t0 + offset + k * SCRAPE_MS + rng.randint(-jitter, jitter) for k in range(samples)]
        )
    return out


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


async def run(
    series: int, samples: int, batch: int, url: str | None, columnar: bool, jitter: int
) -> tuple[list[dict[str, str]], list[list[int]], list[list[float]]]:
    data_dir = Path(tempfile.mkdtemp(prefix="mf-bench-"))
    store = TelemetryStore(settings=StoreSettings(redis=RedisSettings(url=url, data_dir=data_dir)))
    await store.start()
    client: Any = store.connection.client
    rng = random.Random(1)
    t0 = int(time.time() * 1000) - (samples + 1) * SCRAPE_MS  # ends now: Prometheus takes it
    labels = [
        {"job": f"job{i % 10}", "instance": f"10.0.{i // 250}.{i % 250}:9090", "cluster": "c1"}
        for i in range(series)
    ]
    values = sample_values(series, samples, rng)
    stamps = timestamps(series, samples, t0, jitter, rng)
    try:
        before = int((await client.info("memory"))["used_memory"])
        written = 0
        elapsed = 0.0
        pending: list[Sample] = []
        interned: dict[int, SeriesLabels] = {}
        for step in range(samples):
            for i in range(series):
                pending.append(
                    Sample("http_requests_total", labels[i], stamps[i][step], values[i][step])
                )
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
        print(
            f"bytes per sample    {(after - before) / written:.2f} (meshfed: INFO used_memory"
            " delta, index included)"
        )
        started = time.perf_counter()
        found = await store.metrics.select(
            [LabelMatcher("__name__", MatchType.EQUAL, "http_requests_total")],
            t0 - SCRAPE_MS,
            t0 + (samples + 2) * SCRAPE_MS,
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
    return labels, stamps, values


def prometheus_bytes_per_sample(
    labels: list[dict[str, str]], stamps: list[list[int]], values: list[list[float]]
) -> None:
    """Send the same samples to a real Prometheus by remote_write, snapshot its head into a
    block, print the block's bytes per sample (chunks alone and the whole block)."""
    if shutil.which("prometheus") is None:
        print("prometheus          not installed (apt-get install -y prometheus): no peer figure")
        return
    total = sum(map(len, stamps))
    with tempfile.TemporaryDirectory(prefix="mf-bench-prom-") as tmp:
        work = Path(tmp)
        port = free_port()
        (work / "prometheus.yml").write_text("global: {scrape_interval: 1h}\n")
        args = [
            "prometheus", f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-remote-write-receiver", "--web.enable-admin-api", "--log.level=warn",
        ]  # fmt: skip
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_http_ok(f"http://127.0.0.1:{port}/-/ready", proc, what="prometheus")
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(timeout=120) as http:
                per_request = max(1, 2_000 // max(1, len(labels)))
                n_samples = len(stamps[0]) if stamps else 0
                for k in range(0, n_samples, per_request):
                    body: list[Series] = [
                        (
                            {"__name__": "http_requests_total", **labels[i]},
                            list(
                                zip(
                                    stamps[i][k : k + per_request],
                                    values[i][k : k + per_request],
                                    strict=True,
                                )
                            ),
                        )
                        for i in range(len(labels))
                    ]
                    r = http.post(
                        f"{base}/api/v1/write",
                        content=bytes(cramjam.snappy.compress_raw(encode_write_request(body))),
                        headers=HEADERS,
                    )
                    if r.status_code != 204:
                        raise RuntimeError(f"prometheus answered {r.status_code}: {r.text[:200]}")
                r = http.post(f"{base}/api/v1/admin/tsdb/snapshot")
                r.raise_for_status()
                name = r.json()["data"]["name"]
        finally:
            stop(proc, timeout_s=60)
        snap = work / "tsdb" / "snapshots" / name
        chunks = sum(f.stat().st_size for f in snap.glob("*/chunks/*"))
        block = sum(f.stat().st_size for f in snap.rglob("*") if f.is_file())
        print(
            f"prometheus 2.42     {chunks / total:.2f} bytes/sample in chunks,"
            f" {block / total:.2f} with its index (same samples, snapshot block of the head)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=600, help="samples per series")
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--jitter-ms", type=int, default=300, help="± scrape time jitter")
    parser.add_argument("--url", default=None)
    parser.add_argument(
        "--columnar", action="store_true", help="write_series (SeriesBatch) instead of Samples"
    )
    parser.add_argument("--no-prometheus", action="store_true", help="skip the peer's figure")
    args = parser.parse_args()
    if not 0 <= args.jitter_ms < SCRAPE_MS // 2:
        parser.error(f"--jitter-ms must be in 0..{SCRAPE_MS // 2 - 1}")
    print(f"load average before: {os.getloadavg()}; cores: {os.cpu_count()}", flush=True)
    labels, stamps, values = asyncio.run(
        run(args.series, args.samples, args.batch, args.url, args.columnar, args.jitter_ms)
    )
    if not args.no_prometheus:
        prometheus_bytes_per_sample(labels, stamps, values)
    print(f"load average after: {os.getloadavg()}; cores: {os.cpu_count()}")


if __name__ == "__main__":
    main()

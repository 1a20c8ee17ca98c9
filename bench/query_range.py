"""query_range latency: meshfed (TelemetryStore + engine) vs Prometheus 2.42, same data.

Not part of CI. Writes ``series x points`` samples (default 1000 x 1000 = 1M, 5 s apart,
ending now) into a fresh Prometheus by remote_write (in time order, as its head requires)
and into an embedded-Redis TelemetryStore, then times a few query_range queries over
HTTP against both, checks the answers are identical and prints medians and the ratio.
meshfed is timed once per chunk decoder installed (``native``, then the ``numpy``
fallback), interleaved in the same runs, so before/after figures share the machine's load,
which is printed at the start and the end.

    .venv/bin/python bench/query_range.py [--series 1000] [--points 1000] [--runs 5]
        [--decoders native,numpy]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from starlette.applications import Starlette

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.* helpers

from collectors._core.model import Sample
from collectors.api.app import build_app
from collectors.api.prometheus import PrometheusApiSettings
from collectors.store import chunks
from collectors.store.config import RedisSettings, StoreSettings
from collectors.store.store import TelemetryStore
from tests.helpers.prometheus_remote import remote_write, running_prometheus, serving_async

QUERIES = [
    "sum(rate(bench_requests_total[5m]))",
    "sum by (job) (rate(bench_requests_total[5m]))",
    "histogram_quantile(0.9, sum by (le) (rate(bench_requests_total[5m])))",
    "max_over_time(bench_requests_total{job='j1'}[10m])",
]
STEP_MS = 5_000


def make(
    series: int, points: int
) -> tuple[int, list[tuple[dict[str, str], list[tuple[int, float]]]]]:
    rnd = random.Random(1)
    end = int(time.time() * 1000) // STEP_MS * STEP_MS - 60_000
    start = end - (points - 1) * STEP_MS
    out = []
    bounds = ("0.1", "0.5", "1", "5", "+Inf")
    for i in range(series):
        labels = {
            "__name__": "bench_requests_total",
            "job": f"j{i % 10}",
            "instance": f"i{i // 10 % 20}",
            "le": bounds[i % len(bounds)],
            "shard": str(i),
        }
        value, pts = 0.0, []
        for k in range(points):
            value += rnd.random() * 10
            pts.append((start + k * STEP_MS, value))
        out.append((labels, pts))
    return start, out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--decoders",
        default=",".join(chunks.DECODERS),
        help=f"chunk decoders to time meshfed with (installed: {','.join(chunks.DECODERS)})",
    )
    args = parser.parse_args()
    decoders = args.decoders.split(",")
    for name in decoders:
        if name not in chunks.DECODERS:
            parser.error(
                f"--decoders: {name!r} is not installed here ({', '.join(chunks.DECODERS)})"
            )
    print(f"load average at start: {_load()}")
    start, data = make(args.series, args.points)
    end = start + (args.points - 1) * STEP_MS
    print(f"{args.series * args.points:,} samples in {args.series} series")
    with tempfile.TemporaryDirectory() as tmp:

        @contextlib.asynccontextmanager
        async def factory() -> AsyncIterator[Starlette]:
            store = TelemetryStore(
                settings=StoreSettings(redis=RedisSettings(data_dir=Path(tmp) / "redis"))
            )
            await store.start()
            try:
                t = time.monotonic()
                for labels, pts in data:
                    name = labels["__name__"]
                    rest = {k: v for k, v in labels.items() if k != "__name__"}
                    await store.write_samples([Sample(name, rest, ts, v) for ts, v in pts])
                print(f"meshfed store write: {time.monotonic() - t:.1f} s")
                yield build_app(store=store, settings=PrometheusApiSettings())
            finally:
                await store.shutdown()

        with running_prometheus(Path(tmp)) as prom, serving_async(factory) as mesh:
            t = time.monotonic()
            for k in range(0, args.points, 50):  # time-ordered slices across all series
                remote_write(
                    f"{prom}/api/v1/write",
                    [(labels, pts[k : k + 50]) for labels, pts in data],
                    batch=200,
                )
            print(f"prometheus remote_write: {time.monotonic() - t:.1f} s")
            params_base = {"start": start / 1000, "end": end / 1000, "step": "60"}
            with httpx.Client(timeout=600) as client:
                for query in QUERIES:
                    targets = [("prometheus", prom, "")] + [
                        (f"meshfed {d}", mesh, d) for d in decoders
                    ]
                    times: dict[str, list[float]] = {name: [] for name, _, _ in targets}
                    bodies: dict[str, object] = {}
                    for _ in range(args.runs):
                        for name, url, decoder in targets:
                            if decoder:
                                chunks.select_decoder(decoder)
                            t = time.monotonic()
                            r = client.get(
                                f"{url}/api/v1/query_range", params={**params_base, "query": query}
                            )
                            times[name].append(time.monotonic() - t)
                            bodies[name] = r.json()["data"]["result"]
                    p = statistics.median(times["prometheus"])
                    print(f"{query}\n  prometheus {p * 1000:8.1f} ms")
                    first = targets[1][0]
                    for name, _, _ in targets[1:]:
                        m = statistics.median(times[name])
                        same = _canon(bodies["prometheus"]) == _canon(bodies[name])
                        exact = bodies[name] == bodies[first]  # decoders: the same JSON exactly
                        print(
                            f"  {name:<18} {m * 1000:8.1f} ms  ratio {m / p:5.2f}x"
                            f"  identical={same}  same-as-{first.split()[-1]}={exact}"
                        )
    print(f"load average at end: {_load()}")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _canon(result: object) -> object:
    assert isinstance(result, list)
    return sorted(
        (tuple(sorted(s["metric"].items())), [(v[0], round(float(v[1]), 6)) for v in s["values"]])
        for s in result
    )


if __name__ == "__main__":
    main()

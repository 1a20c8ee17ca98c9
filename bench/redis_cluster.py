"""Scale-out benchmark (not run in CI): remote_write samples/s into one 3-master Redis Cluster
through 1 and then 2 ``meshfed collect`` processes, in the same run.

Three Debian ``redis-server --cluster-enabled yes`` nodes (AOF, ``--appendfsync``, default
``always`` as the collector's durability promise needs) are started on loopback and joined
with ``redis-cli --cluster create`` (``tests.helpers.redis_cluster``, as the store's tests
do). The same pre-encoded remote_write bodies as ``bench/remote_write.py`` (``--series``
series x ``--rounds`` rounds, ``--concurrency`` sender shards with disjoint series) are sent
first to one collector, then — the cluster flushed — split over two collectors (half of the
shards each). Every request must answer 204. Prints samples/s of both and the ratio, with the
load average before and after: a collector is one Python process (one core at most), so a
second one can only help while cores are free; on a 2-core machine shared with Redis and the
senders it mostly cannot.

    .venv/bin/python bench/redis_cluster.py --series 2000 --rounds 10
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.remote_write import payloads, send_all
from tests.helpers.redis_cluster import cluster_collector, redis_cluster, require_redis_tools

_collector = functools.partial(cluster_collector, ready_timeout_s=240.0, stop_timeout_s=60.0)
"""On a loaded 2-core machine a collector may take minutes to start and to drain."""


async def _send(urls: list[str], shards: list[list[bytes]]) -> float:
    """Shards split round robin over ``urls``; seconds until every body was answered 204."""
    started = time.perf_counter()
    await asyncio.gather(
        *(send_all(f"{url}/api/v1/write", shards[i :: len(urls)]) for i, url in enumerate(urls))
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--samples-per-request", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=4, help="sender shards (even)")
    parser.add_argument("--appendfsync", choices=["always", "everysec"], default="always")
    args = parser.parse_args()
    try:
        require_redis_tools()
    except RuntimeError as e:
        sys.exit(str(e))
    if args.concurrency < 2 or args.concurrency % 2:
        parser.error("--concurrency must be even and >= 2 (split over two collectors)")
    print(f"load average before: {os.getloadavg()}; cores: {os.cpu_count()}", flush=True)
    total = args.series * args.rounds
    t0 = (int(time.time()) - 3600) * 1000
    shards = payloads(args.series, args.rounds, args.samples_per_request, t0, args.concurrency)
    with tempfile.TemporaryDirectory(prefix="mf-bench-cluster-") as tmp:
        root = Path(tmp)
        with redis_cluster(root, appendfsync=args.appendfsync) as cluster:
            with _collector(cluster, root / "c1") as one:
                single = asyncio.run(_send([one], shards))
            cluster.flush()
            with (
                _collector(cluster, root / "c2") as a,
                _collector(cluster, root / "c3", seed=1) as b,
            ):
                double = asyncio.run(_send([a, b], shards))
    print(f"{total} samples, {args.concurrency} sender shards, appendfsync {args.appendfsync}")
    print(f"1 collector:  {total / single:12,.0f} samples/s ({single:.2f} s)")
    print(f"2 collectors: {total / double:12,.0f} samples/s ({double:.2f} s)")
    print(f"ratio 2/1: {single / double:.2f}x")
    print(f"load average after: {os.getloadavg()}; cores: {os.cpu_count()}")


if __name__ == "__main__":
    main()

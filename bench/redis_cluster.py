"""Scale-out benchmark (not run in CI): remote_write samples/s into one 3-master Redis Cluster
through 1 and then 2 ``meshfed collect`` processes, in the same run.

Three Debian ``redis-server --cluster-enabled yes`` nodes (AOF, ``--appendfsync``, default
``always`` as the collector's durability promise needs) are started on loopback and joined
with ``redis-cli --cluster create``. The same pre-encoded remote_write bodies as
``bench/remote_write.py`` (``--series`` series x ``--rounds`` rounds, ``--concurrency`` sender
shards with disjoint series) are sent first to one collector, then — the cluster flushed —
split over two collectors (half of the shards each). Every request must answer 204. Prints
samples/s of both and the ratio, with the load average before and after: a collector is one
Python process (one core at most), so a second one can only help while cores are free; on a
2-core machine shared with Redis and the senders it mostly cannot.

    .venv/bin/python bench/redis_cluster.py --series 2000 --rounds 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.remote_write import payloads, send_all
from tests.helpers.processes import free_port, stop, wait_http_ok


def _port_pair() -> int:
    """A port p with p + 10000 (its cluster bus port) also free."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port + 10000 > 65535:
            continue
        with socket.socket() as bus, contextlib.suppress(OSError):
            bus.bind(("127.0.0.1", port + 10000))
            return port
    raise RuntimeError("no free port pair for a cluster node")


@contextlib.contextmanager
def cluster(root: Path, appendfsync: str) -> Iterator[list[int]]:
    ports, procs = [], []
    try:
        for _ in range(3):
            port = _port_pair()
            node = root / str(port)
            node.mkdir()
            procs.append(
                subprocess.Popen(
                    [
                        "redis-server",
                        "--port",
                        str(port),
                        "--bind",
                        "127.0.0.1",
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--appendonly",
                        "yes",
                        "--appendfsync",
                        appendfsync,
                        "--save",
                        "",
                        "--dir",
                        str(node),
                        "--logfile",
                        "redis.log",
                        "--protected-mode",
                        "no",
                    ],
                    cwd=node,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            ports.append(port)
        for port in ports:
            _until(lambda p=port: redis.Redis(port=p, socket_timeout=1).ping())
        subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        for port in ports:
            _until(
                lambda p=port: (
                    b"cluster_state:ok"
                    in redis.Redis(port=p, socket_timeout=1).execute_command("CLUSTER", "INFO")
                )
            )
        yield ports
    finally:
        for proc in procs:
            stop(proc)


def _until(predicate: object, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.ConnectionError, OSError):
            if predicate():  # type: ignore[operator]
                return
        time.sleep(0.1)
    raise RuntimeError("the cluster did not come up")


def flush(ports: list[int]) -> None:
    for port in ports:
        client = redis.Redis(port=port, socket_timeout=10)
        client.flushall()
        client.close()


@contextlib.contextmanager
def collector(seed_port: int, work: Path) -> Iterator[str]:
    port = free_port()
    work.mkdir()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from meshfed.cli import main; main()",
            "collect",
            "--http",
            f"127.0.0.1:{port}",
            "--redis-url",
            f"redis+cluster://127.0.0.1:{seed_port}",
            "--data-dir",
            str(work),
            "--disable",
            "statsd",
            "--disable",
            "forward",
            "--disable",
            "otlp",
            "--log-level",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http_ok(f"{url}/-/ready", proc, what="meshfed collect", timeout_s=240)
        yield url
    finally:
        stop(proc, timeout_s=60)


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
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        sys.exit("Debian redis-server missing: apt-get install -y redis-server redis-tools")
    if args.concurrency < 2 or args.concurrency % 2:
        parser.error("--concurrency must be even and >= 2 (split over two collectors)")
    print(f"load average before: {os.getloadavg()}; cores: {os.cpu_count()}", flush=True)
    total = args.series * args.rounds
    t0 = (int(time.time()) - 3600) * 1000
    shards = payloads(args.series, args.rounds, args.samples_per_request, t0, args.concurrency)
    with tempfile.TemporaryDirectory(prefix="mf-bench-cluster-") as tmp:
        root = Path(tmp)
        with cluster(root, args.appendfsync) as ports:
            with collector(ports[0], root / "c1") as one:
                single = asyncio.run(_send([one], shards))
            flush(ports)
            with collector(ports[0], root / "c2") as a, collector(ports[1], root / "c3") as b:
                double = asyncio.run(_send([a, b], shards))
    print(f"{total} samples, {args.concurrency} sender shards, appendfsync {args.appendfsync}")
    print(f"1 collector:  {total / single:12,.0f} samples/s ({single:.2f} s)")
    print(f"2 collectors: {total / double:12,.0f} samples/s ({double:.2f} s)")
    print(f"ratio 2/1: {single / double:.2f}x")
    print(f"load average after: {os.getloadavg()}; cores: {os.cpu_count()}")


if __name__ == "__main__":
    main()

"""Forward receiver benchmark (not run in CI): PackedForward events stored and acked per second.

A client process opens ``--connections`` connections and sends PackedForward messages of
``--batch`` events with a chunk id, waiting for each ack before the next message (as
Fluentd's out_forward with ``require_ack_response`` does). The receiver runs in this process
exactly as ``meshfed collect`` runs it — the ``Collector`` with only the Forward receiver
enabled — so each message goes receiver -> pipeline (normalize, memory check, group commit)
-> store and is acked only after the store's write returned (embedded Redis, ``appendfsync
always``). Afterwards ``redis-benchmark -s <socket> -P 64 XADD`` runs against the same
server in the same run for the ratio (goal: >= 30 %). Events vary (path, status, latency,
user agent), as real access logs do. The clock starts once every client has built its
messages and connected; the receiver process's CPU time per event is printed too (steadier
than the rate on a shared machine). ``LogStore.write_logs`` alone is measured as well (the
store's ceiling, without parsing, pipeline or sockets). The load average is printed before
and after: figures from a loaded machine are not comparable with quiet ones. Times are
integer seconds, or with ``--event-time`` EventTime (ext 0, what Fluentd and Fluent Bit
send). ``--cluster NAME`` sets the collector's cluster and region labels, as a deployment
does (the pipeline then adds them to every record's resource). Bounded: ``--events`` in
total, a 300 s timeout.
Usage: ``python bench/forward.py [--events 200000] [--batch 1000] [--connections 4]
[--event-time] [--cluster c1]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgpack
from prometheus_client import CollectorRegistry

from collectors._core.model import LogRecord, Severity
from collectors.app.collector import Collector
from collectors.app.config import CollectorConfig, HttpSettings
from collectors.pipeline.normalize import ResourceSettings
from collectors.pipeline.pipeline import PipelineSettings
from collectors.receivers.forward.config import ForwardSettings
from collectors.receivers.forward.receiver import ForwardReceiver
from collectors.store.config import RedisSettings, StoreSettings
from collectors.store.store import TelemetryStore

STATUSES = (200, 200, 200, 201, 204, 301, 404, 500)


def client(port: int, events: int, batch: int, connection: int, event_time: bool) -> None:
    """One sending connection (run in a child process, one per connection)."""
    now: int | msgpack.ExtType = int(time.time())
    if event_time:
        now = msgpack.ExtType(0, struct.pack(">II", now, 123_456_789))
    messages = []
    for m in range(0, events, batch):
        entries = b"".join(
            msgpack.packb(
                [
                    now,
                    {
                        "message": f"GET /api/v{i % 3}/items/{(i * 7919) % 100_003}"
                        f" {STATUSES[i % len(STATUSES)]} {(i * 31) % 2_000}ms",
                        "level": ("info", "warn", "error")[(i % 97) // 90 + (i % 997) // 996],
                        "agent": f"client/{i % 13}.{i % 7}",
                        "conn": connection,
                    },
                ]
            )
            for i in range(m, min(events, m + batch))
        )
        messages.append(msgpack.packb(["bench.access", entries, {"chunk": f"{connection}-{m}"}]))
    unpacker = msgpack.Unpacker()
    with socket.create_connection(("127.0.0.1", port), timeout=120) as conn:
        print("ready", flush=True)  # messages built and connected: the clock may start
        sys.stdin.readline()
        for message in messages:
            conn.sendall(message)
            while True:
                unpacker.feed(conn.recv(4096))
                if any(True for _ in unpacker):
                    break


async def run(events: int, batch: int, connections: int, event_time: bool, cluster: str) -> None:
    print(f"load average before: {os.getloadavg()}; cores: {os.cpu_count()}", flush=True)
    data_dir = Path(tempfile.mkdtemp(prefix="mf-bench-forward-"))
    registry = CollectorRegistry()
    collector = Collector(
        config=CollectorConfig(
            http=HttpSettings(listen="127.0.0.1:0"),
            store=StoreSettings(redis=RedisSettings(url=None, data_dir=data_dir)),
            remote_write=None,
            statsd=None,
            otlp=None,
            forward=ForwardSettings(listen="127.0.0.1:0"),
            pipeline=PipelineSettings(
                resource=ResourceSettings(cluster=cluster, region="r1" if cluster else "")
            ),
        ),
        registry=registry,
    )
    await collector.start()
    store = collector.store
    receiver = collector.receivers["forward"]
    assert isinstance(receiver, ForwardReceiver)
    try:
        per_connection = events // connections
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                __file__,
                "--client",
                str(receiver.port),
                str(per_connection),
                str(batch),
                str(i),
                str(int(event_time)),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            for i in range(connections)
        ]
        for p in procs:  # every client has built its messages and connected
            assert p.stdout is not None
            await asyncio.wait_for(p.stdout.readline(), timeout=120)
        started = time.perf_counter()
        cpu_started = time.process_time()  # this process: receiver + store client
        for p in procs:
            assert p.stdin is not None
            p.stdin.write(b"go\n")
            await p.stdin.drain()
        await asyncio.wait_for(asyncio.gather(*(p.wait() for p in procs)), timeout=300)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        stored = registry.get_sample_value(
            "meshfed_receiver_stored_total", {"receiver": "forward", "signal": "logs"}
        )
        rate = (stored or 0) / elapsed
        print(
            f"forward: {int(stored or 0)} events stored+acked in {elapsed:.2f} s = {rate:,.0f}/s"
            f" (batch {batch}, {connections} connections"
            f"{', EventTime' if event_time else ''}{f', cluster {cluster}' if cluster else ''});"
            " receiver process CPU"
            f" {cpu / max(stored or 0, 1) * 1e6:.2f} µs/event"
        )
        await store_only(store, min(events, 100_000), batch)
        assert store.connection.embedded is not None
        baseline = redis_benchmark(store.connection.embedded.url.removeprefix("unix://"))
        if baseline:
            print(
                f"redis-benchmark XADD -P 64 (same server, same run): {baseline:,.0f}/s;"
                f" ratio {rate / baseline:.1%} (goal >= 30 %)"
            )
        print(f"load average after: {os.getloadavg()}; cores: {os.cpu_count()}")
    finally:
        await collector.shutdown()
        shutil.rmtree(data_dir, ignore_errors=True)


async def store_only(store: TelemetryStore, events: int, batch: int) -> None:
    """``write_logs`` alone with records shaped like the receiver's (no parsing, no sockets)."""
    now = time.time_ns()
    batches = [
        [
            LogRecord(
                time_unix_nano=now,
                body=f"GET /api/{i} 200",
                tag="bench.store",
                severity_number=Severity.INFO,
                severity_text="info",
                attributes={"conn": 0},
                observed_time_unix_nano=now,
            )
            for i in range(m, min(events, m + batch))
        ]
        for m in range(0, events, batch)
    ]
    started = time.perf_counter()
    for records in batches:
        await store.write_logs(records)
    elapsed = time.perf_counter() - started
    print(f"LogStore.write_logs alone: {events / elapsed:,.0f} records/s (batch {batch})")


def redis_benchmark(socket_path: str) -> float | None:
    tool = shutil.which("redis-benchmark")
    if tool is None:
        print("redis-benchmark not found (apt-get install redis-tools)")
        return None
    out = subprocess.run(
        [
            tool,
            "-s",
            socket_path,
            "-P",
            "64",
            "-n",
            "200000",
            "-q",
            "XADD",
            "bench:s",
            "*",
            "f",
            "v",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    found = re.findall(r"([\d.]+) requests per second", out)
    return float(found[-1]) if found else None


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        port, events, batch, connection, event_time = (int(a) for a in sys.argv[2:7])
        client(port, events, batch, connection, bool(event_time))
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--event-time", action="store_true", help="EventTime instead of int")
    parser.add_argument("--cluster", default="", help="the collector's cluster label")
    args = parser.parse_args()
    asyncio.run(run(args.events, args.batch, args.connections, args.event_time, args.cluster))


if __name__ == "__main__":
    main()

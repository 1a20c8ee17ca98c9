"""OTLP/gRPC benchmark (not run in CI, bounded in time): spans stored per second, and memory
(the collector's RSS and Redis's) under 10x overload and against the memory limiter.

The receiver runs in this process as ``meshfed collect`` runs it (the ``Collector`` with only
OTLP enabled: receiver -> pipeline with its memory limiter -> embedded Redis); senders run in
a child process (``--sender``) so that their memory and CPU are not counted. Every request
is a different body — fresh trace and span ids, varied service, operation, durations,
status and attributes — never one body resent. Three phases: nominal (4 senders), 10x
overload (10 x ``max_concurrent_requests`` senders), and a limiter run: a fresh collector
whose ``pipeline.memory.limit_mib`` is set ``--limiter-headroom-mib`` above its RSS at start
(the soft limit, where refusing starts), overloaded like the previous phase until it refuses
(UNAVAILABLE, counted ``rejected{reason="memory_limit"}``).
Each phase prints spans/s acknowledged, answers by code, and peak RSS of the collector process
and of its Redis server (embedded, a separate process) — together what the deployment needs.
The load average is printed before and after: a loaded machine's figures are not comparable.
Usage: ``python bench/otlp.py [--seconds 10] [--batch 500] [--memory-limit-mib 512]
[--limiter-headroom-mib 1]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client import CollectorRegistry

from collectors.app.collector import Collector
from collectors.app.config import CollectorConfig, HttpSettings
from collectors.pipeline.memory import MemorySettings
from collectors.pipeline.pipeline import PipelineSettings
from collectors.receivers.otlp.config import OtlpSettings
from collectors.receivers.otlp.grpc import OtlpGrpcReceiver
from collectors.store.config import RedisSettings, StoreSettings

METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
SERVICES = ("checkout", "cart", "payments", "search", "frontend", "inventory", "auth")


def _rss_kib(field: str, pid: int | str = "self") -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def _request(batch: int, rng: random.Random) -> bytes:
    """A fresh body: new trace/span ids, varied names, times, status and attributes."""
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    service = rng.choice(SERVICES)
    rs.resource.attributes.add(key="service.name").value.string_value = service
    rs.resource.attributes.add(key="host.name").value.string_value = f"node-{rng.randrange(40)}"
    scope = rs.scope_spans.add()
    now = time.time_ns()
    trace_id = rng.getrandbits(128).to_bytes(16, "big")
    for i in range(batch):
        if i % rng.randint(5, 40) == 0:  # traces of varying size
            trace_id = rng.getrandbits(128).to_bytes(16, "big")
        duration = int(rng.lognormvariate(14, 1.5))
        span = scope.spans.add(
            trace_id=trace_id,
            span_id=rng.getrandbits(64).to_bytes(8, "big"),
            name=f"{service}.op-{rng.randrange(60)}",
            start_time_unix_nano=now - duration,
            end_time_unix_nano=now,
            kind=rng.choice((1, 2, 3)),
        )
        span.attributes.add(key="http.route").value.string_value = f"/r/{rng.randrange(200)}"
        span.attributes.add(key="http.status_code").value.int_value = rng.choice(
            (200, 200, 200, 201, 404, 500)
        )
        if rng.random() < 0.05:
            span.status.code = 2
            span.status.message = f"error {rng.randrange(1000)}"
    return request.SerializeToString()


def sender(port: int, threads: int, seconds: float, batch: int) -> None:
    """Child process: ``threads`` blocking clients export for ``seconds``; prints JSON."""
    codes: Counter[str] = Counter()
    spans = 0
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def loop(n: int) -> None:
        nonlocal spans
        rng = random.Random(n)
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        call = channel.unary_unary(METHOD)
        while time.monotonic() < deadline:
            body = _request(batch, rng)
            try:
                call(body, timeout=10)
                code = "OK"
            except grpc.RpcError as e:
                code = e.code().name
            with lock:
                codes[code] += 1
                spans += batch if code == "OK" else 0
        channel.close()

    workers = [threading.Thread(target=loop, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    print(json.dumps({"spans": spans, "codes": dict(codes)}))


async def phase(
    port: int, threads: int, seconds: float, batch: int, redis_pid: int | None
) -> dict[str, object]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--sender", str(port), str(threads), str(seconds), str(batch),
        stdout=subprocess.PIPE,
    )  # fmt: skip
    peak = redis_peak = both = 0
    while proc.returncode is None:
        ours, theirs = _rss_kib("VmRSS:"), _rss_kib("VmRSS:", redis_pid) if redis_pid else 0
        peak, redis_peak, both = max(peak, ours), max(redis_peak, theirs), max(both, ours + theirs)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), timeout=0.2)
    out, _ = await proc.communicate()
    result: dict[str, object] = json.loads(out)
    result["rss_peak_mib"] = round(peak / 1024, 1)
    result["redis_rss_peak_mib"] = round(redis_peak / 1024, 1)
    result["together_peak_mib"] = round(both / 1024, 1)
    return result


def _collector(data_dir: Path, limit_mib: int, spike_mib: int) -> Collector:
    return Collector(
        config=CollectorConfig(
            http=HttpSettings(listen="127.0.0.1:0"),
            store=StoreSettings(redis=RedisSettings(data_dir=data_dir)),
            pipeline=PipelineSettings(
                memory=MemorySettings(limit_mib=limit_mib, spike_mib=spike_mib)
            ),
            remote_write=None,
            statsd=None,
            forward=None,
            otlp=OtlpSettings(grpc_listen="127.0.0.1:0", http_listen="127.0.0.1:0"),
        ),
        registry=CollectorRegistry(),
    )


async def _started(
    data_dir: Path, limit_mib: int, spike_mib: int = 0
) -> tuple[Collector, int, int | None]:
    collector = _collector(data_dir, limit_mib, spike_mib)
    await collector.start()
    receiver = collector.receivers["otlp_grpc"]
    assert isinstance(receiver, OtlpGrpcReceiver)
    embedded = collector.store.connection.embedded
    return collector, receiver.port, embedded.pid if embedded is not None else None


def _show(what: str, seconds: float, result: dict[str, object]) -> None:
    rate = int(result["spans"]) / seconds  # type: ignore[call-overload]
    print(f"{what}: {rate:,.0f} spans/s stored; {result}", flush=True)


async def run(seconds: float, batch: int, limit_mib: int, headroom_mib: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="mf-bench-otlp-"))
    try:
        collector, port, redis_pid = await _started(tmp / "a", limit_mib)
        try:
            print(f"rss at start: {_rss_kib('VmRSS:') / 1024:.1f} MiB (redis pid {redis_pid})")
            _show("nominal (4 senders)", seconds, await phase(port, 4, seconds, batch, redis_pid))
            threads = 10 * OtlpSettings().max_concurrent_requests
            overload = await phase(port, threads, seconds, batch, redis_pid)
            _show(f"10x overload ({threads} senders)", seconds, overload)
            peak = float(overload["together_peak_mib"])  # type: ignore[arg-type]
            verdict = "OK" if peak < limit_mib else "OVER"
            print(f"collector + redis peak {peak} MiB vs limit {limit_mib} MiB: {verdict}")
        finally:
            await collector.shutdown()
        rss = _rss_kib("VmRSS:") // 1024
        tight = max(64, rss + headroom_mib + 1)
        spike = tight - rss - headroom_mib  # refusing starts at RSS + headroom
        collector, port, redis_pid = await _started(tmp / "b", tight, spike)
        try:
            print(
                f"limiter run: limit_mib {tight}, spike_mib {spike} (RSS now {rss} MiB;"
                f" refusing from {tight - spike} MiB)"
            )
            threads = 10 * OtlpSettings().max_concurrent_requests
            result = await phase(port, threads, seconds, batch, redis_pid)
            _show(f"limiter run ({threads} senders)", seconds, result)
            refused = collector.registry.get_sample_value(
                "meshfed_receiver_rejected_total",
                {"receiver": "pipeline", "reason": "memory_limit"},
            )
            print(
                f"refused by the memory limiter (pipeline): {int(refused or 0)} records"
                f" ({'reached' if refused else 'NOT reached: senders too slow to grow RSS'})"
            )
        finally:
            await collector.shutdown()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--sender":
        port, threads, seconds, batch = sys.argv[2:6]
        sender(int(port), int(threads), float(seconds), int(batch))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--memory-limit-mib", type=int, default=512)
    parser.add_argument("--limiter-headroom-mib", type=int, default=1)
    args = parser.parse_args()
    if not 1 <= args.seconds <= 120:
        parser.error("--seconds must be in 1..120")
    print(f"load average before: {os.getloadavg()}; cores: {os.cpu_count()}", flush=True)
    asyncio.run(run(args.seconds, args.batch, args.memory_limit_mib, args.limiter_headroom_mib))
    print(f"load average after: {os.getloadavg()}; cores: {os.cpu_count()}")


if __name__ == "__main__":
    main()

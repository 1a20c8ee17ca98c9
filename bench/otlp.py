"""OTLP/gRPC benchmark (not run in CI, bounded in time): spans stored per second, and the
receiver process's RSS under 10x overload (10 x ``max_concurrent_requests`` senders).

The receiver and an embedded Redis store run in this process; senders run in a child process
(``--sender``) so that their memory and CPU are not counted. Prints spans/s acknowledged,
refusals by code, and peak RSS (VmHWM) against ``--memory-limit-mib``.
Usage: ``python bench/otlp.py [--seconds 10] [--batch 500] [--memory-limit-mib 512]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
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

from collectors._core.selfmetrics import ReceiverMetricFamilies, ReceiverMetrics
from collectors.receivers.otlp.config import OtlpSettings
from collectors.receivers.otlp.grpc import OtlpGrpcReceiver
from collectors.store.config import RedisSettings, StoreSettings
from collectors.store.store import TelemetryStore

METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    return 0


def _request(batch: int, seed: int) -> bytes:
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.add(key="service.name").value.string_value = "bench"
    scope = rs.scope_spans.add()
    now = time.time_ns()
    for i in range(batch):
        span = scope.spans.add(
            trace_id=(seed * 1_000_003 + i).to_bytes(16, "big"),
            span_id=(i + 1).to_bytes(8, "big"),
            name=f"op-{i % 20}",
            start_time_unix_nano=now - 1_000_000,
            end_time_unix_nano=now,
            kind=2,
        )
        span.attributes.add(key="http.route").value.string_value = f"/r/{i % 50}"
    return request.SerializeToString()


def sender(port: int, threads: int, seconds: float, batch: int) -> None:
    """Child process: ``threads`` blocking clients export for ``seconds``; prints JSON."""
    codes: Counter[str] = Counter()
    spans = 0
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def loop(n: int) -> None:
        nonlocal spans
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        call = channel.unary_unary(METHOD)
        body = _request(batch, n)
        k = 0
        while time.monotonic() < deadline:
            k += 1
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


async def phase(port: int, threads: int, seconds: float, batch: int) -> dict[str, object]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--sender", str(port), str(threads), str(seconds), str(batch),
        stdout=subprocess.PIPE,
    )  # fmt: skip
    peak = 0
    while proc.returncode is None:
        peak = max(peak, _rss_kib("VmRSS:"))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), timeout=0.2)
    out, _ = await proc.communicate()
    result: dict[str, object] = json.loads(out)
    result["rss_peak_mib"] = round(peak / 1024, 1)
    return result


async def run(seconds: float, batch: int, limit_mib: int) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="mf-bench-otlp-"))
    store = TelemetryStore(settings=StoreSettings(redis=RedisSettings(data_dir=data_dir)))
    await store.start()
    settings = OtlpSettings(grpc_listen="127.0.0.1:0")
    metrics = ReceiverMetrics(
        families=ReceiverMetricFamilies.create(CollectorRegistry()), receiver="bench"
    )
    receiver = OtlpGrpcReceiver(settings=settings, sink=store, metrics=metrics)
    await receiver.start()
    try:
        print(f"rss at start: {_rss_kib('VmRSS:') / 1024:.1f} MiB")
        nominal = await phase(receiver.port, 4, seconds, batch)
        rate = int(nominal["spans"]) / seconds  # type: ignore[call-overload]
        print(f"nominal (4 senders, {batch} spans/request): {rate:,.0f} spans/s stored; {nominal}")
        threads = 10 * settings.max_concurrent_requests
        overload = await phase(receiver.port, threads, seconds, batch)
        rate = int(overload["spans"]) / seconds  # type: ignore[call-overload]
        peak = float(overload["rss_peak_mib"])  # type: ignore[arg-type]
        verdict = "OK" if peak < limit_mib else "OVER"
        print(f"10x overload ({threads} senders): {rate:,.0f} spans/s stored; {overload}")
        print(f"peak RSS {peak} MiB vs limit {limit_mib} MiB: {verdict}")
        print(f"VmHWM {_rss_kib('VmHWM:') / 1024:.1f} MiB")
    finally:
        await receiver.shutdown()
        await store.shutdown()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--sender":
        port, threads, seconds, batch = sys.argv[2:6]
        sender(int(port), int(threads), float(seconds), int(batch))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--memory-limit-mib", type=int, default=512)
    args = parser.parse_args()
    if not 1 <= args.seconds <= 120:
        parser.error("--seconds must be in 1..120")
    asyncio.run(run(args.seconds, args.batch, args.memory_limit_mib))


if __name__ == "__main__":
    main()

"""StatsD throughput: highest paced rate with <= 0.1 % loss, meshfed vs the reference daemon.

Not run in CI. For each daemon (npm ``statsd`` 0.9 with a JSON backend; meshfed's
StatsdReceiver in its own process with a counting sink) and each shape (1 line per datagram,
20 lines per datagram), a sender process paces lines at increasing rates for ``--seconds``
each. The lines are realistic, not one repeated datagram: ``--names`` metric names, every
metric type (counters, sampled counters ``|@0.1``, gauges, timers ``ms``, histograms ``h``,
sets ``s``) and varying values, drawn from a pool of ``POOL_LINES`` distinct lines that is
cycled — far more than meshfed's per-worker parse cache holds (it is cleared every 50,000
distinct lines), so no line is ever served from that cache. The received line count is read
from the daemon's own ``statsd.metrics_received`` counter in its flushes. The first rate
losing > 0.1 % ends the ladder. Both daemons run alone (one after the other) and get the
same sender. Bounded: at most len(RATES) trials of ~(seconds + 3) s per daemon and shape.

    .venv/bin/python bench/statsd.py [--seconds 2] [--workers 2] [--names 10000] [--max-rate N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

RATES = (
    10_000,
    25_000,
    50_000,
    100_000,
    150_000,
    200_000,
    300_000,
    400_000,
    600_000,
    800_000,
    1_000_000,
)
STATSD_JS = (
    Path(os.environ.get("MESHFED_NODE_PEERS", Path.home() / ".cache/meshfed/node")).expanduser()
    / "node_modules/statsd/stats.js"
)
BACKEND = Path(__file__).resolve().parent.parent / ("tests/helpers/statsd_json_backend.js")
FLUSH_MS = 1000
POOL_LINES = 400_000
"""Distinct lines the sender cycles through (8x the receiver's parse cache)."""


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def received_total(out: Path) -> float:
    """Σ statsd.metrics_received over every flush line so far."""
    if not out.exists():
        return 0.0
    total = 0.0
    for line in out.read_text().splitlines():
        if line.endswith("}"):
            total += json.loads(line)["counters"].get("statsd.metrics_received", 0)
    return total


def line_pool(names: int, seed: int = 7) -> list[bytes]:
    """``POOL_LINES`` distinct StatsD lines: every type, many names, varying values."""
    rng = random.Random(seed)
    seen: set[bytes] = set()
    pool: list[bytes] = []
    kinds = ("c", "c@", "g", "ms", "h", "s")
    while len(pool) < POOL_LINES:
        i = rng.randrange(names)
        kind = kinds[i % len(kinds)]
        name = f"bench.svc{i % 37}.{('req', 'lat', 'size', 'users', 'queue')[i % 5]}.m{i}"
        if kind == "c":
            line = f"{name}:{rng.randint(1, 500)}|c"
        elif kind == "c@":
            line = f"{name}:{rng.randint(1, 50)}|c|@0.1"
        elif kind == "g":
            line = f"{name}:{rng.uniform(0, 1e4):.3f}|g"
        elif kind in ("ms", "h"):
            line = f"{name}:{rng.lognormvariate(3, 1):.3f}|{kind}"
        else:
            line = f"{name}:user{rng.randrange(1_000_000)}|s"
        data = line.encode()
        if data not in seen:
            seen.add(data)
            pool.append(data)
    return pool


def sender(
    port: int, rate: int, seconds: float, per_datagram: int, names: int, sent: object
) -> None:
    """Pace ``rate`` lines/s in 1 ms slices from 4 source sockets (round robin), cycling the
    pool's lines packed ``per_datagram`` to a datagram (built before the clock starts)."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(4)]
    pool = line_pool(names)
    datagrams = [b"\n".join(pool[i : i + per_datagram]) for i in range(0, len(pool), per_datagram)]
    n_datagrams = len(datagrams)
    target = ("127.0.0.1", port)
    datagrams_per_ms = rate / per_datagram / 1000
    start = time.perf_counter()
    done = 0
    end = start + seconds
    while (now := time.perf_counter()) < end:
        due = int((now - start) * 1000 * datagrams_per_ms)
        while done < due:
            socks[done & 3].sendto(datagrams[done % n_datagrams], target)
            done += 1
    sent.value = done * per_datagram  # type: ignore[attr-defined]


def trial(
    port: int, out: Path, rate: int, seconds: float, per_datagram: int, names: int
) -> tuple[int, float]:
    before = received_total(out)
    sent = multiprocessing.Value("q", 0)
    proc = multiprocessing.Process(
        target=sender, args=(port, rate, seconds, per_datagram, names, sent)
    )
    proc.start()
    proc.join()
    # Until two flushes in a row add nothing (bounded): on a loaded machine a fixed wait
    # lets the tail of one trial be counted in the next.
    got, quiet, deadline = received_total(out), 0, time.monotonic() + 15
    while quiet < 2 and time.monotonic() < deadline:
        time.sleep(FLUSH_MS / 1000)
        now = received_total(out)
        quiet = quiet + 1 if now == got else 0
        got = now
    return int(sent.value), got - before


def ladder(
    name: str, port: int, out: Path, seconds: float, per_datagram: int, names: int, max_rate: int
) -> int:
    best = 0
    for rate in (r for r in RATES if r <= max_rate):
        sent, got = trial(port, out, rate, seconds, per_datagram, names)
        loss = 1 - got / sent if sent else 1.0
        achieved = sent / seconds
        print(
            f"  {name:9s} {per_datagram:2d}/dgram target {rate:>9,}/s sent {achieved:>11,.0f}/s "
            f"loss {loss * 100:6.3f} %",
            flush=True,
        )
        if loss > 0.001:
            break
        best = int(achieved)
        if achieved < 0.9 * rate:  # the sender is the limit now
            break
    return best


async def serve_meshfed(port: int, out: Path, workers: int) -> None:
    from prometheus_client import CollectorRegistry  # noqa: PLC0415 (only the --serve child needs it)

    from collectors._core.component import WriteResult  # noqa: PLC0415 (only the --serve child needs it)
    from collectors._core.selfmetrics import ReceiverMetricFamilies, ReceiverMetrics  # noqa: PLC0415 (only the --serve child needs it)
    from collectors.receivers.statsd.config import StatsdSettings  # noqa: PLC0415 (only the --serve child needs it)
    from collectors.receivers.statsd.receiver import StatsdReceiver  # noqa: PLC0415 (only the --serve child needs it)

    class CountingSink:
        async def write_samples(self, samples: Sequence[object]) -> WriteResult:
            lines = sum(
                s.value
                for s in samples  # type: ignore[attr-defined]
                if s.name == "stats_counters_statsd_metrics_received_count"
            )  # type: ignore[attr-defined]
            with out.open("a") as f:
                f.write(json.dumps({"counters": {"statsd.metrics_received": lines}}) + "\n")
            return WriteResult(accepted=len(samples))

        async def write_metadata(self, metadata: object) -> None: ...
        async def write_spans(self, spans: object) -> None: ...
        async def write_logs(self, records: object) -> None: ...

    receiver = StatsdReceiver(
        settings=StatsdSettings(
            udp_listen=f"127.0.0.1:{port}",
            tcp_listen=None,
            flush_interval_s=FLUSH_MS / 1000,
            udp_workers=workers,
        ),
        sink=CountingSink(),  # type: ignore[arg-type]
        metrics=ReceiverMetrics(
            families=ReceiverMetricFamilies.create(CollectorRegistry()), receiver="statsd"
        ),
    )
    await receiver.start()
    print(f"  meshfed SO_RCVBUF granted: {receiver.receive_buffer} bytes", flush=True)
    try:
        await asyncio.sleep(3600)
    finally:
        await receiver.shutdown()


def start_daemon(which: str, tmp: Path, workers: int) -> tuple[subprocess.Popen[bytes], int, Path]:
    port, out = free_port(socket.SOCK_DGRAM), tmp / f"{which}.jsonl"
    if which == "reference":
        config = tmp / "reference.js"
        config.write_text(
            json.dumps(
                {
                    "address": "127.0.0.1",
                    "port": port,
                    "mgmt_address": "127.0.0.1",
                    "mgmt_port": free_port(socket.SOCK_STREAM),
                    "flushInterval": FLUSH_MS,
                    "backends": [str(BACKEND)],
                    "jsonBackend": {"path": str(out)},
                }
            )
        )
        cmd = ["node", str(STATSD_JS), str(config)]
    else:
        cmd = [sys.executable, __file__, "--serve", str(port), str(out), str(workers)]
    proc = subprocess.Popen(cmd, stdout=None if which == "meshfed" else subprocess.DEVNULL)
    time.sleep(3.0)
    return proc, port, out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--names", type=int, default=10_000, help="distinct metric names")
    parser.add_argument(
        "--max-rate", type=int, default=RATES[-1], help="stop the ladder at this rate (lines/s)"
    )
    parser.add_argument("--serve", nargs=3, metavar=("PORT", "OUT", "WORKERS"))
    args = parser.parse_args()
    if args.serve:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        asyncio.run(serve_meshfed(int(args.serve[0]), Path(args.serve[1]), int(args.serve[2])))
        return
    print(f"load average before: {os.getloadavg()}; cores: {os.cpu_count()}", flush=True)
    results: dict[tuple[str, int], int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for which in ("reference", "meshfed"):
            proc, port, out = start_daemon(which, Path(tmp), args.workers)
            try:
                for per in (1, 20):
                    results[(which, per)] = ladder(
                        which, port, out, args.seconds, per, args.names, args.max_rate
                    )
            finally:
                proc.terminate()
                proc.wait(timeout=15)
    for per in (1, 20):
        ref, ours = results[("reference", per)], results[("meshfed", per)]
        ratio = ours / ref if ref else float("inf")
        print(
            f"{per:2d} lines/datagram: reference {ref:>9,}/s  meshfed {ours:>9,}/s  "
            f"ratio {ratio:.2f}x (goal >= 1.5x)"
        )
    print(f"load average after: {os.getloadavg()}; cores: {os.cpu_count()}")


if __name__ == "__main__":
    main()

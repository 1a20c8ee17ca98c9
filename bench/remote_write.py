"""Benchmark: remote_write samples stored per second, meshfed vs Prometheus 2.42's receiver.

Not part of CI. Both receivers get the same pre-encoded payloads (snappy + protobuf, as
Prometheus sends them: ``--series`` series, ``--samples-per-request`` samples per request,
timestamps moving forward per round) from ``--concurrency`` senders that each own a
disjoint set of series and send in time order (like Prometheus's queue shards), in the
same run. meshfed runs as ``meshfed collect`` (embedded Redis) in a subprocess; Prometheus with
``--web.enable-remote-write-receiver``. Every request must answer 204. Prints samples/s of
both and the ratio meshfed / Prometheus (goal >= 1); ``--repeat N`` runs N such pairs
(fresh processes each, so series creation is measured every time) and prints medians.
A series' head is cut into a compressed chunk every 120 samples (``chunks.max_samples``), so
runs of fewer rounds never pay for cuts: ``--rounds 600`` measures the steady state.
``--appendfsync no`` gives meshfed Prometheus's own durability (a write before each reply,
no fsync), the like-for-like comparison; the default, ``always``, also survives power loss.
Each side also prints the CPU its server processes spent per sample (from /proc: Prometheus;
meshfed's collector and its embedded redis-server), and the ratio of those totals: on a
shared 2-core machine that is steadier than samples/s, and it says whether a gap is work or
waiting. ``--set store.redis.write_module=false`` runs meshfed without its Redis module
(the Lua write script alone, docs/adr/0018-redis-write-module.md): the before/after of that
change on the same machine.
``--sender`` picks the load generator: ``lean`` (default, ``bench/lean_sender.py``: pre-built
HTTP/1.1 requests, ~0.05 us of CPU per sample) or ``httpx`` (the client of earlier figures,
~1 us per sample: on 2 cores it took CPU from both receivers); its CPU per sample is
printed with each side.
``--split-creation`` sends in two phases with a pause between them: first the requests
that hold a series' first sample (every series is created there), then the rest (appends
to known series only); each side prints both phases, and the medians give each phase's
ratio, which says whether a gap is series creation or the steady state.

    .venv/bin/python bench/remote_write.py --series 10000 --rounds 20 --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cramjam
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import lean_sender
from tests.helpers.processes import free_port, stop, wait_http_ok
from tests.helpers.remote_write import HEADERS, Series, encode_write_request


def payloads(
    series: int, rounds: int, per_request: int, t0_ms: int, shards: int
) -> list[list[bytes]]:
    """Per shard (a disjoint set of series, as Prometheus's queue shards have), its requests
    in time order: ``rounds`` scrapes of its series cut into ``per_request`` samples."""
    out: list[list[bytes]] = []
    for shard in range(shards):
        bodies: list[bytes] = []
        request: list[Series] = []
        for k in range(rounds):
            for i in range(shard, series, shards):
                labels = {
                    "__name__": f"bench_metric_{i % 50}",
                    "instance": f"host-{i % 200}:9100",
                    "job": "bench",
                    "series": str(i),
                }
                request.append((labels, [(t0_ms + k * 1000, float(i + k))]))
                if len(request) >= per_request:
                    bodies.append(_snappy(encode_write_request(request)))
                    request = []
        if request:
            bodies.append(_snappy(encode_write_request(request)))
        out.append(bodies)
    return out


def _snappy(data: bytes) -> bytes:
    """Really compressed, as Prometheus sends it (the tests' literal-only blocks are not)."""
    return bytes(cramjam.snappy.compress_raw(data))


async def send_all(url: str, shards: list[list[bytes]]) -> float:
    """Seconds to get every body answered 204; one sequential sender per shard."""
    limits = httpx.Limits(max_connections=len(shards))
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:

        async def sender(bodies: list[bytes]) -> None:
            for body in bodies:
                r = await client.post(url, content=body, headers=HEADERS)
                if r.status_code != 204:
                    raise RuntimeError(f"{url} answered {r.status_code}: {r.text[:200]}")

        started = time.perf_counter()
        await asyncio.gather(*(sender(b) for b in shards))
        return time.perf_counter() - started


@contextlib.contextmanager
def process(args: list[str], ready: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http_ok(ready, proc, what=args[0])
        yield proc
    finally:
        stop(proc, timeout_s=60)


@dataclass(frozen=True)
class Side:
    """One receiver's run: wall seconds (in all, and per phase) and CPU seconds per process
    (name -> seconds)."""

    seconds: float
    cpu: dict[str, float]
    phases: tuple[float, ...]
    sender_cpu: float
    """CPU seconds of this process (the sender) while it sent."""


def creation_phases(
    bodies: list[list[bytes]], series: int, per_request: int
) -> list[list[list[bytes]]]:
    """``[requests holding a series' first sample, the rest]``, per shard: every series is
    created in the first phase; the second only appends. Shard ``s`` owns the series
    ``i % shards == s``, and its first round fills its first requests."""
    shards = len(bodies)
    first = [-(-len(range(s, series, shards)) // per_request) for s in range(shards)]  # ceil
    return [
        [b[:n] for b, n in zip(bodies, first, strict=True)],
        [b[n:] for b, n in zip(bodies, first, strict=True)],
    ]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tree(pid: int) -> dict[int, str]:
    """``pid`` and its descendants (meshfed's embedded redis-server), pid -> command name."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    out, todo = {}, [pid]
    while todo:
        p = todo.pop()
        with contextlib.suppress(OSError):
            out[p] = (Path(f"/proc/{p}/comm")).read_text().strip()
        todo.extend(children.get(p, []))
    return out


Sender = Callable[[str, list[list[bytes]]], Awaitable[float]]
SENDERS: dict[str, Sender] = {"lean": lean_sender.send_all, "httpx": send_all}


def measured(
    proc: subprocess.Popen[bytes], url: str, phases: list[list[list[bytes]]], send: Sender
) -> Side:
    """Send each phase's bodies to ``url``, one phase after the other; the wall times and
    the CPU each server process (and this sender) spent."""
    tree = _tree(proc.pid)
    before = {p: _cpu_seconds(p) for p in tree}
    sender_before = time.process_time()
    times = tuple(asyncio.run(send(url, bodies)) for bodies in phases)
    sender_cpu = time.process_time() - sender_before
    cpu: dict[str, float] = {}
    for p, name in tree.items():
        key = "collector" if p == proc.pid and name.startswith("python") else name
        cpu[key] = cpu.get(key, 0.0) + _cpu_seconds(p) - before[p]
    return Side(sum(times), cpu, times, sender_cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--samples-per-request", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=4, help="sender shards")
    parser.add_argument(
        "--repeat", type=int, default=1, help="pairs of runs (fresh processes); medians"
    )
    parser.add_argument(
        "--appendfsync",
        choices=["always", "everysec", "no"],
        default=None,
        help="embedded Redis AOF fsync policy for meshfed (default: the collector's default)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="passed to meshfed collect as --set (repeatable), e.g. pipeline.batch.workers=4",
    )
    parser.add_argument(
        "--sender",
        choices=sorted(SENDERS),
        default="lean",
        help="load generator: lean (pre-built HTTP/1.1 requests) or httpx (earlier figures)",
    )
    parser.add_argument(
        "--split-creation",
        action="store_true",
        help="time series creation (the requests with first samples) and appends apart",
    )
    args = parser.parse_args()
    if shutil.which("prometheus") is None:
        sys.exit("prometheus is not installed (apt-get install -y prometheus)")
    print(f"load average before: {os.getloadavg()}; cores: {os.cpu_count()}", flush=True)
    total = args.series * args.rounds
    p_rates: list[float] = []
    m_rates: list[float] = []
    cpu_ratios: list[float] = []
    phase_ratios: list[tuple[float, ...]] = []
    for _ in range(args.repeat):
        t0 = (int(time.time()) - 3600) * 1000
        bodies = payloads(args.series, args.rounds, args.samples_per_request, t0, args.concurrency)
        print(
            f"{sum(map(len, bodies))} requests, {total} samples, {args.concurrency} shards,"
            f" sender {args.sender}"
        )
        phases = [bodies]
        if args.split_creation:
            phases = creation_phases(bodies, args.series, args.samples_per_request)
        prom, mesh = run_pair(phases, args.appendfsync, args.set, SENDERS[args.sender])
        p_s, m_s = prom.seconds, mesh.seconds
        p_rates.append(total / p_s)
        m_rates.append(total / m_s)
        print(f"prometheus 2.42: {total / p_s:12,.0f} samples/s ({p_s:.2f} s) {_cpu(prom, total)}")
        print(f"meshfed:         {total / m_s:12,.0f} samples/s ({m_s:.2f} s) {_cpu(mesh, total)}")
        print(f"ratio meshfed/prometheus: {p_s / m_s:.2f}x (goal >= 1x)")
        p_cpu, m_cpu = sum(prom.cpu.values()), sum(mesh.cpu.values())
        cpu_ratios.append(p_cpu / m_cpu if m_cpu else 0.0)
        print(f"CPU per sample, prometheus/meshfed: {cpu_ratios[-1]:.2f}x (>= 1: meshfed cheaper)")
        if args.split_creation:
            phase_ratios.append(_print_phases(phases, prom, mesh))
    if args.repeat > 1:
        ratios = sorted(m / p for m, p in zip(m_rates, p_rates, strict=True))
        print(
            f"median of {args.repeat}: prometheus {statistics.median(p_rates):,.0f}/s,"
            f" meshfed {statistics.median(m_rates):,.0f}/s,"
            f" ratio {statistics.median(ratios):.2f}x (range {ratios[0]:.2f}-{ratios[-1]:.2f});"
            f" CPU per sample prometheus/meshfed {statistics.median(cpu_ratios):.2f}x"
            f" (range {min(cpu_ratios):.2f}-{max(cpu_ratios):.2f})"
        )
        for i, name in enumerate(PHASE_NAMES if phase_ratios else ()):
            each = sorted(r[i] for r in phase_ratios)
            print(
                f"median of {args.repeat}, {name} phase: ratio {statistics.median(each):.2f}x"
                f" (range {each[0]:.2f}-{each[-1]:.2f})"
            )
    print(f"load average after: {os.getloadavg()}; cores: {os.cpu_count()}")


PHASE_NAMES = ("creation", "append")


def _print_phases(phases: list[list[list[bytes]]], prom: Side, mesh: Side) -> tuple[float, ...]:
    """Each phase's seconds on both sides; returns the ratios meshfed / Prometheus (the
    inverse ratio of the seconds, as for samples/s)."""
    ratios = []
    for name, phase, p_s, m_s in zip(PHASE_NAMES, phases, prom.phases, mesh.phases, strict=True):
        requests = sum(map(len, phase))
        ratios.append(p_s / m_s)
        print(
            f"  {name} phase ({requests} requests): prometheus {p_s:.3f} s,"
            f" meshfed {m_s:.3f} s, ratio {p_s / m_s:.2f}x"
        )
    return tuple(ratios)


def _cpu(side: Side, samples: int) -> str:
    """CPU per sample of each server process and of the sender, e.g.
    ``cpu us/sample: collector 1.7, redis 2.2; sender 0.05``."""
    parts = ", ".join(f"{k} {1e6 * v / samples:.2f}" for k, v in sorted(side.cpu.items()))
    return f"[cpu us/sample: {parts}; sender {1e6 * side.sender_cpu / samples:.2f}]"


def run_pair(
    phases: list[list[list[bytes]]],
    appendfsync: str | None,
    assignments: list[str],
    send: Sender,
) -> tuple[Side, Side]:
    """Prometheus and meshfed (each a fresh process) on the same bodies: wall and CPU."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        m_port, p_port = free_port(), free_port()
        meshfed = [
            sys.executable, "-c", "from meshfed.cli import main; main()", "collect",
            "--http", f"127.0.0.1:{m_port}", "--data-dir", str(work / "meshfed"),
            "--disable", "statsd", "--disable", "forward", "--disable", "otlp",
            "--log-level", "warning",
        ]  # fmt: skip
        if appendfsync:
            config = work / "meshfed.yaml"
            config.write_text(f"store: {{redis: {{embedded_appendfsync: '{appendfsync}'}}}}\n")
            meshfed += ["--config", str(config)]
        for assignment in assignments:
            meshfed += ["--set", assignment]
        (work / "prometheus.yml").write_text("global: {scrape_interval: 1h}\n")
        prometheus = [
            "prometheus", f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'tsdb'}", f"--web.listen-address=127.0.0.1:{p_port}",
            "--web.enable-remote-write-receiver", "--log.level=warn",
        ]  # fmt: skip
        with process(prometheus, f"http://127.0.0.1:{p_port}/-/ready") as proc:
            prom = measured(proc, f"http://127.0.0.1:{p_port}/api/v1/write", phases, send)
        with process(meshfed, f"http://127.0.0.1:{m_port}/-/ready") as proc:
            mesh = measured(proc, f"http://127.0.0.1:{m_port}/api/v1/write", phases, send)
    return prom, mesh


if __name__ == "__main__":
    main()

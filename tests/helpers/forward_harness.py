"""Shared parts of the Forward integration tests: a store + receiver harness and the npm driver.

The ``harness`` fixture (defined as ``harness_fixture``: import that name into a test module)
starts a private embedded Redis through ``TelemetryStore`` and builds receivers on free ports
that write to it, with their own metrics registry for counting refusals.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from collectors._core.model import LogRecord
from collectors._core.selfmetrics import ReceiverMetricFamilies, ReceiverMetrics
from collectors.receivers.forward.config import ForwardSettings
from collectors.receivers.forward.receiver import ForwardReceiver
from collectors.store.config import RedisSettings, StoreSettings
from collectors.store.logs import LogQuery
from collectors.store.store import TelemetryStore

DRIVER = Path(__file__).with_name("forward_driver.js")
MIB = 1024 * 1024
TEST_SETTINGS = ForwardSettings(
    listen="127.0.0.1:0",
    max_message_bytes=1 * MIB,
    max_decompressed_bytes=4 * MIB,
    idle_timeout_s=30.0,
    shutdown_grace_s=5.0,
)


class Harness:
    """A started store and a factory of receivers writing to it, with their metrics."""

    def __init__(self, store: TelemetryStore) -> None:
        self.store = store
        self.registry = CollectorRegistry()
        self.metrics = ReceiverMetrics(
            families=ReceiverMetricFamilies.create(self.registry), receiver="forward"
        )
        self.receivers: list[ForwardReceiver] = []

    async def receiver(self, sink: Any = None, **changes: Any) -> ForwardReceiver:
        receiver = ForwardReceiver(
            settings=replace(TEST_SETTINGS, **changes),
            sink=sink or self.store,
            metrics=self.metrics,
        )
        await receiver.start()
        self.receivers.append(receiver)
        return receiver

    def rejected(self, reason: str) -> float:
        value = self.registry.get_sample_value(
            "meshfed_receiver_rejected_total", {"receiver": "forward", "reason": reason}
        )
        return value or 0.0

    def stored(self) -> float:
        value = self.registry.get_sample_value(
            "meshfed_receiver_stored_total", {"receiver": "forward", "signal": "logs"}
        )
        return value or 0.0

    async def logs(self, tag: str, cluster: str | None = None) -> list[LogRecord]:
        now = time.time_ns()
        query = LogQuery(
            start_unix_nano=now - 3600 * 10**9,
            end_unix_nano=now,
            limit=5000,
            tag=tag,
            cluster=cluster,
        )
        result = await self.store.logs.query(query)
        return list(result.records)


@pytest.fixture(name="harness")
async def harness_fixture(tmp_path: Path) -> AsyncIterator[Harness]:
    store = TelemetryStore(
        settings=StoreSettings(redis=RedisSettings(url=None, data_dir=tmp_path / "redis"))
    )
    await store.start()
    h = Harness(store)
    try:
        yield h
    finally:
        for receiver in h.receivers:
            await receiver.shutdown()
        await store.shutdown()


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def run_node(plan: dict[str, Any]) -> dict[str, int]:
    node = shutil.which("node")
    assert node is not None, "node is required (Debian nodejs)"
    proc = await asyncio.create_subprocess_exec(
        node, str(DRIVER), json.dumps(plan), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    result: dict[str, int] = json.loads(out.decode().strip().splitlines()[-1])
    return result


def bodies(records: Sequence[LogRecord]) -> set[str]:
    return {r.body for r in records}

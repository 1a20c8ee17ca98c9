"""The embedded Redis never outlives its store process: a SIGKILLed collector must not leave
a server behind that a restarted collector would race on the same AOF (T2)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers.paths import REPO_ROOT

STARTER = """
import asyncio, sys, time
from pathlib import Path
from collectors.store.config import RedisSettings, StoreSettings
from collectors.store.store import TelemetryStore

async def main():
    store = TelemetryStore(settings=StoreSettings(redis=RedisSettings(data_dir=Path(sys.argv[1]))))
    await store.start()
    print(store.connection.embedded.pid, flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_embedded_redis_dies_with_a_killed_store_process(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", STARTER, str(tmp_path / "redis")],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    try:
        assert proc.stdout is not None
        redis_pid = int(proc.stdout.readline())
        assert _alive(redis_pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _alive(redis_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(redis_pid), "embedded Redis outlived its killed store process"
    finally:
        proc.kill()
        proc.wait(timeout=10)

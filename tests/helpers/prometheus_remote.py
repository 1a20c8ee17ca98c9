"""Real peers for the query tests: a Prometheus 2.42 process, remote_write, a uvicorn app.

remote_write bodies are encoded by hand (tests.helpers.remote_write), so the tests need no
generated code and no compression library.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import struct
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette

from tests.helpers.processes import free_port, stop, wait_http_ok
from tests.helpers.remote_write import HEADERS, Series, encode_write_request, snappy_block

STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]


def remote_write(url: str, series: Sequence[Series], batch: int = 50) -> None:
    with httpx.Client(timeout=30) as client:
        for i in range(0, len(series), batch):
            body = snappy_block(encode_write_request(series[i : i + batch]))
            r = client.post(url, content=body, headers=HEADERS)
            if r.status_code // 100 != 2:
                raise AssertionError(f"remote_write answered {r.status_code}: {r.text}")


@contextlib.contextmanager
def running_prometheus(workdir: Path) -> Iterator[str]:
    """A Prometheus with the remote_write receiver; yields its base URL."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise RuntimeError(
            "prometheus is not installed: run `apt-get install -y prometheus` (scripts/setup.sh)"
        )
    port = free_port()
    config = workdir / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 15s\n")
    log = (workdir / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-remote-write-receiver",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http_ok(
            f"{url}/-/ready", proc, what="prometheus", log=workdir / "prometheus.log", timeout_s=30
        )
        yield url
    finally:
        stop(proc)
        log.close()


@contextlib.contextmanager
def serving(app: Starlette) -> Iterator[str]:
    """``app`` served by uvicorn on a free loopback port in a thread; yields its URL."""
    with serving_async(_constant(app)) as url:
        yield url


def _constant(app: Starlette) -> AppFactory:
    @contextlib.asynccontextmanager
    async def factory() -> AsyncIterator[Starlette]:
        yield app

    return factory


AppFactory = Callable[[], contextlib.AbstractAsyncContextManager[Starlette]]


@contextlib.contextmanager
def serving_async(factory: AppFactory) -> Iterator[str]:
    """Serve the app ``factory`` builds inside the server's own event loop.

    The store's Redis client is bound to the loop that created it, so the store must be
    started (and the data written) in the loop uvicorn serves from.
    """
    port = free_port()
    state: dict[str, Any] = {}

    async def run() -> None:
        async with factory() as app:
            server = uvicorn.Server(
                uvicorn.Config(
                    app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"
                )
            )
            state["server"] = server
            await server.serve()

    def target() -> None:
        try:
            asyncio.run(run())
        except BaseException as e:  # reported to the waiting test below
            state["error"] = e

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not (state.get("server") is not None and state["server"].started):
        if "error" in state:
            raise RuntimeError(f"query app failed to start: {state['error']!r}")
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start within 60 s")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        state["server"].should_exit = True
        thread.join(timeout=30)

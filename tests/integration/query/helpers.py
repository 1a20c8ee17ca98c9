"""Real peers for the query tests: a Prometheus 2.42 process, remote_write, a uvicorn app.

remote_write bodies are encoded by hand (the WriteRequest protobuf has four small
messages; snappy's block format allows a body made only of literals), so the tests need no
generated code and no compression library.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette

STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]

Series = tuple[Mapping[str, str], Sequence[tuple[int, float]]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def encode_write_request(series: Sequence[Series]) -> bytes:
    """``prometheus.WriteRequest`` protobuf bytes."""
    body = bytearray()
    for labels, samples in series:
        ts = bytearray()
        for name, value in sorted(labels.items()):
            ts += _field(1, _field(1, name.encode()) + _field(2, value.encode()))
        for t, v in samples:
            sample = b"\x09" + struct.pack("<d", v) + b"\x10" + _varint(t)
            ts += _field(2, sample)
        body += _field(1, bytes(ts))
    return bytes(body)


def snappy_block(data: bytes) -> bytes:
    """Snappy block format made of literal elements only (valid, uncompressed)."""
    out = bytearray(_varint(len(data)))
    for i in range(0, len(data), 65536):
        chunk = data[i : i + 65536]
        out.append(61 << 2)
        out += struct.pack("<H", len(chunk) - 1)
        out += chunk
    return bytes(out)


def remote_write(url: str, series: Sequence[Series], batch: int = 50) -> None:
    headers = {
        "Content-Encoding": "snappy",
        "Content-Type": "application/x-protobuf",
        "X-Prometheus-Remote-Write-Version": "0.1.0",
    }
    with httpx.Client(timeout=30) as client:
        for i in range(0, len(series), batch):
            body = snappy_block(encode_write_request(series[i : i + batch]))
            r = client.post(url, content=body, headers=headers)
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
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"prometheus exited: {(workdir / 'prometheus.log').read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("prometheus did not become ready in 30 s")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
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

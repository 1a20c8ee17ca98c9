"""Real peers as child processes: a free loopback port, waiting for one to answer, stopping it.

Every wait is bounded; a peer that exits early or never answers fails with its log's tail.
"""

from __future__ import annotations

import collections
import contextlib
import socket
import subprocess
import time
from pathlib import Path

import httpx

_HANDED_OUT: collections.deque[tuple[int, int]] = collections.deque(maxlen=4096)
"""(kind, port) recently returned: the kernel may offer a closed port again at once, so two
calls in a row (a server's HTTP and gRPC ports) could get the same one before either binds."""


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A loopback port free right now for ``kind`` (TCP by default, ``SOCK_DGRAM`` for UDP),
    and not one this process was given recently."""
    for _ in range(64):
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if (kind, port) not in _HANDED_OUT:
            _HANDED_OUT.append((kind, port))
            return port
    raise RuntimeError("no loopback port that was not handed out recently; is the range tiny?")


def wait_http_ok(
    url: str,
    proc: subprocess.Popen[bytes],
    *,
    what: str,
    log: Path | None = None,
    timeout_s: float = 60.0,
) -> None:
    """Poll ``url`` until it answers 200; ``RuntimeError`` if ``proc`` exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}: {_tail(log)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{what} not ready in {timeout_s:g} s: {_tail(log)}")


def stop(proc: subprocess.Popen[bytes], *, timeout_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout_s``; reaps the process. No-op once it exited."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout_s)


def _tail(log: Path | None) -> str:
    if log is None or not log.exists():
        return ""
    return log.read_text(errors="replace")[-2000:]

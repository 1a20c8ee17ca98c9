"""Redis connections: one way to open a client from a URL, embedded server or not.

Why one path: with no URL the store starts a private Redis (``collectors.store.embedded``)
and connects to its unix socket through the same ``open_client`` an external ``redis://``,
``rediss://``, ``unix://`` or ``redis+cluster://`` URL uses, so tests of the embedded mode
exercise the production code.
Every Redis failure that a retry may cure becomes ``StoreUnavailableError`` (retryable);
refused credentials or a refused TLS handshake (unknown CA, wrong host name, missing client
certificate) at ``start()`` are ``ConfigError``: no retry cures them, the settings must change.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
from collections.abc import Iterator
from typing import Any, TypeAlias
from urllib.parse import urlsplit

import redis.exceptions as rexc
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from collectors._core.errors import ConfigError, StoreUnavailableError
from collectors.store.config import RedisSettings
from collectors.store.embedded import EmbeddedRedis

RedisClient: TypeAlias = "Redis[bytes] | RedisCluster[bytes]"
"""What the stores talk to; both speak the same command API (pipelines included). The
installed redis stubs lag redis-py (no ``aclose``, cluster commands), so code holding a
client types it ``Any`` internally."""

CLUSTER_SCHEMES = {"redis+cluster://": "redis://", "rediss+cluster://": "rediss://"}
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

"""The federator's small HTTP server: ``/metrics``, ``/healthz``, ``/readyz``.

A few lines of asyncio instead of a web framework: three GET endpoints, HTTP/1.1 with
``Connection: close``, request head bounded to 8 KiB and 5 s. ``/healthz`` answers 200 while
the event loop runs; ``/readyz`` answers 200 once the status reporter says ready (every
reachable cluster synced), 503 before; its body names the replica's role (``ready (leader)``,
``ready (standby)``, ``ready (single)``): a standby is ready too - its caches are warm, so it
can take over at once.

Optionally secured (the ``http:`` section, docs/security.md): TLS or mutual TLS from
``ssl`` (a client the CA did not sign fails the handshake, before any request), and a bearer
token checked on ``/metrics`` (and on the probes with ``protectProbes``): a request without
``Authorization: Bearer <token>`` gets 401 and a body that says only that, before the route
runs. The token check is passed in (``Authorizer``) so this module and the gRPC API share the
re-reading, constant-time ``TokenFile`` without importing each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable
from typing import Protocol

from federator.core.config_security import HttpSecuritySettings
from federator.metrics import FederatorMetrics
from federator.status import StatusRegistry

MAX_HEAD = 8192
PROBES = frozenset({"/healthz", "/readyz"})
DENIED = b"unauthorized: missing or wrong bearer token (send Authorization: Bearer <token>)\n"
REASONS = {200: "OK", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed"}


class Authorizer(Protocol):
    """Whether an ``Authorization`` header value carries the expected token."""

    def accepts(self, authorization: str | bytes | None) -> bool: ...


def server_tls(settings: HttpSecuritySettings) -> ssl.SSLContext | None:
    """The server's TLS context for ``settings`` (None: plaintext); mutual TLS with a CA."""
    t = settings.transport
    if t.cert_file is None or t.key_file is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(t.cert_file, t.key_file)
    if t.client_ca_file is not None:
        context.load_verify_locations(cafile=t.client_ca_file)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def _authorization(head: bytes) -> bytes | None:
    """The ``Authorization`` header's value in a request head, if any."""
    for line in head.split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if sep and name.strip().lower() == b"authorization":
            return value.strip()
    return None


class HealthServer:
    """Serves the three endpoints on ``host:port``; ``start()``/``shutdown()``, both idempotent."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        metrics: FederatorMetrics,
        status: StatusRegistry,
        security: HttpSecuritySettings | None = None,
        authorizer: Authorizer | None = None,
    ) -> None:
        """``authorizer`` (required when ``security`` has a token file) checks the token."""
        security = security or HttpSecuritySettings()
        if security.transport.token_file is not None and authorizer is None:
            raise ValueError("http.tokenFile is set but no authorizer was given")
        self._host, self._port = host, port
        self._tls = server_tls(security)
        self._authorizer = authorizer if security.transport.token_file is not None else None
        self._open = frozenset() if security.protect_probes else PROBES
        self._routes: dict[str, Callable[[], tuple[int, bytes, str]]] = {
            "/metrics": lambda: (200, metrics.render(), "text/plain; version=0.0.4"),
            "/healthz": lambda: (200, b"ok\n", "text/plain"),
            "/readyz": lambda: (
                (200, f"ready ({status.leadership.role})\n".encode(), "text/plain")
                if status.ready
                else (503, b"not ready: waiting for clusters to sync\n", "text/plain")
            ),
        }
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        if self._server is None:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        if self._server is not None:
            return
        self._server = await asyncio.start_server(
            self._handle,
            self._host,
            self._port,
            limit=MAX_HEAD,
            ssl=self._tls,
            ssl_handshake_timeout=5.0 if self._tls else None,
        )

    async def shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5.0)
            method, path, *_ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
            target = path.split("?", 1)[0]
            route = self._routes.get(target)
            extra = ""
            if (
                self._authorizer is not None
                and target not in self._open
                and not self._authorizer.accepts(_authorization(head))
            ):  # before the method and route: an unauthenticated client learns nothing
                status, body, ctype = 401, DENIED, "text/plain"
                extra = 'WWW-Authenticate: Bearer realm="meshfed-federator"\r\n'
            elif method != "GET":
                status, body, ctype = 405, b"method not allowed\n", "text/plain"
            elif route is None:
                status, body, ctype = 404, b"not found\n", "text/plain"
            else:
                status, body, ctype = route()
            reason = REASONS.get(status, "Service Unavailable")
            writer.write(
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n{extra}"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            TimeoutError,
            ValueError,
            ConnectionError,
            ssl.SSLError,
        ):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

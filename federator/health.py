"""The federator's small HTTP server: ``/metrics``, ``/healthz``, ``/readyz``.

A few lines of asyncio instead of a web framework: three GET endpoints, HTTP/1.1 with
``Connection: close``, request head bounded to 8 KiB and 5 s. ``/healthz`` answers 200 while
the event loop runs; ``/readyz`` answers 200 once the status reporter says ready (every
reachable cluster synced), 503 before; its body names the replica's role (``ready (leader)``,
``ready (standby)``, ``ready (single)``): a standby is ready too - its caches are warm, so it
can take over at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from federator.metrics import FederatorMetrics
from federator.status import StatusRegistry

MAX_HEAD = 8192


class HealthServer:
    """Serves the three endpoints on ``host:port``; ``start()``/``shutdown()``, both idempotent."""

    def __init__(
        self, *, host: str, port: int, metrics: FederatorMetrics, status: StatusRegistry
    ) -> None:
        self._host, self._port = host, port
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
            self._handle, self._host, self._port, limit=MAX_HEAD
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
            route = self._routes.get(path.split("?", 1)[0])
            if method != "GET":
                status, body, ctype = 405, b"method not allowed\n", "text/plain"
            elif route is None:
                status, body, ctype = 404, b"not found\n", "text/plain"
            else:
                status, body, ctype = route()
            reason = {200: "OK", 404: "Not Found", 405: "Method Not Allowed"}.get(
                status, "Service Unavailable"
            )
            writer.write(
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

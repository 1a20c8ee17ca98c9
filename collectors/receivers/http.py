"""The collector's HTTP listener: query API + ``POST /api/v1/write`` + ``/metrics``.

One port serves what Prometheus-speaking peers need from meshfed: they query it (the
store's Prometheus-compatible API, traces, logs), remote-write to it, and scrape its own
metrics. The query app is mounted unchanged under the receiver routes. uvicorn runs inside
the caller's event loop on a socket bound here (so ``listen`` port 0 works and a busy port
is a ``ConfigError`` at start-up), leaving the process's signal handling to the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Sequence

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from collectors.errors import ConfigError

log = logging.getLogger(__name__)

_START_TIMEOUT_S = 10.0
_GRACEFUL_S = 10


def metrics_route(registry: CollectorRegistry) -> Route:
    """``GET /metrics``: the process's own metrics in the text exposition format."""

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return Route("/metrics", metrics, methods=["GET"])


def combined_app(*, query_app: Starlette, routes: Sequence[BaseRoute]) -> Starlette:
    """``routes`` first, everything else handled by the query app."""
    return Starlette(routes=[*routes, Mount("/", app=query_app)])


class HttpServer:
    """A Component serving ``app`` on ``host:port`` with uvicorn."""

    def __init__(self, *, app: Starlette, host: str, port: int, name: str = "http") -> None:
        self._app = app
        self._host = host
        self._requested_port = port
        self._name = name
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.port = 0
        """The bound port once started."""

    async def start(self) -> None:
        if self._server is not None:
            return
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self._host, self._requested_port))
        except OSError as e:
            sock.close()
            raise ConfigError(
                f"{self._name}.listen: cannot bind {self._host}:{self._requested_port}: {e}"
            ) from e
        sock.listen(1024)
        sock.setblocking(False)
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self._app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=_GRACEFUL_S,
        )
        config.load()
        server = uvicorn.Server(config)
        self._server = server
        # ``_serve`` is ``serve`` without uvicorn's process-wide signal capture.
        self._task = asyncio.create_task(server._serve([sock]), name=f"{self._name}-server")
        for _ in range(int(_START_TIMEOUT_S / 0.01)):
            if server.started or self._task.done():
                break
            await asyncio.sleep(0.01)
        if not server.started:
            await self.shutdown()
            raise ConfigError(f"{self._name}: the server on {self._host} did not start")
        log.info("%s listening on http://%s:%d", self._name, self._host, self.port)

    async def shutdown(self) -> None:
        """Stop accepting; requests in progress get ``_GRACEFUL_S`` to finish; idempotent."""
        server, task = self._server, self._task
        self._server = self._task = None
        if server is None or task is None:
            return
        server.should_exit = True
        try:
            await asyncio.wait_for(task, timeout=_GRACEFUL_S + 5)
        except (TimeoutError, asyncio.CancelledError):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

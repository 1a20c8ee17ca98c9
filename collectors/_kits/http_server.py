"""uvicorn serving an ASGI app on a socket bound here, inside the caller's event loop.

Why one component: every HTTP listener of the collectors (the collector's HTTP port, the
OTLP/HTTP receiver, ``meshfed store serve``) needs the same care, and only this module runs
uvicorn. The socket is bound before uvicorn starts, so ``listen`` port 0 works (``port``
tells the bound one) and a busy port is a ``ConfigError`` naming the setting at start-up;
uvicorn's ``_serve`` is ``serve`` without its process-wide signal capture, so the process's
signal handling stays with the caller; no lifespan, no access log (no log line per request).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from collectors._core.errors import ConfigError
from collectors._kits.tasks import cancel_and_wait

log = logging.getLogger(__name__)

_START_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class ServerTls:
    """The server's certificate and key (PEM); with ``client_ca_file`` clients must present a
    certificate that CA signed (mTLS)."""

    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None

    @property
    def mode(self) -> str:
        return "mTLS" if self.client_ca_file else "TLS"


class HttpServer:
    """A :class:`~collectors._core.component.Component` serving ``app`` on ``listen``."""

    def __init__(
        self,
        *,
        app: ASGIApp,
        listen: tuple[str, int],
        setting_name: str,
        name: str = "http",
        tls: ServerTls | None = None,
        backlog: int = 1024,
        graceful_s: int = 10,
    ) -> None:
        """``setting_name`` (``http.listen``) names the setting in bind errors; ``name`` the
        server in logs; requests in progress get ``graceful_s`` to finish at shutdown."""
        self._app = app
        self._host, self._requested_port = listen
        self._setting_name = setting_name
        self._name = name
        self._tls = tls
        self._backlog = backlog
        self._graceful_s = graceful_s
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.port = 0
        """The bound port once started (useful with port 0)."""

    async def start(self) -> None:
        """Bind, then serve in a task; returns once uvicorn accepts connections."""
        if self._server is not None:
            return
        sock = self._bind()
        self.port = int(sock.getsockname()[1])
        tls = self._tls
        config = uvicorn.Config(
            self._app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ssl_certfile=tls.cert_file if tls else None,
            ssl_keyfile=tls.key_file if tls else None,
            ssl_ca_certs=str(tls.client_ca_file) if tls and tls.client_ca_file else None,
            ssl_cert_reqs=ssl.CERT_REQUIRED if tls and tls.client_ca_file else ssl.CERT_NONE,
            timeout_graceful_shutdown=self._graceful_s,
        )
        config.load()
        server = uvicorn.Server(config)
        self._server = server
        self._task = asyncio.create_task(server._serve([sock]), name=f"{self._name}-server")
        for _ in range(int(_START_TIMEOUT_S / 0.01)):
            if server.started or self._task.done():
                break
            await asyncio.sleep(0.01)
        if not server.started:
            failed = (
                f"{self._setting_name}: the HTTP server on "
                f"{self._host}:{self._requested_port} did not start"
            )
            try:
                await self.shutdown()
            except Exception as e:  # why it did not start
                raise ConfigError(f"{failed}: {e}") from e
            raise ConfigError(failed)
        log.info(
            "%s listening on %s://%s:%d%s",
            self._name,
            "https" if tls else "http",
            self._host,
            self.port,
            f" ({tls.mode})" if tls else "",
        )

    def _bind(self) -> socket.socket:
        host, port = self._host, self._requested_port
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as e:
            sock.close()
            raise ConfigError(f"{self._setting_name}: cannot bind {host}:{port}: {e}") from e
        sock.listen(self._backlog)
        sock.setblocking(False)
        return sock

    async def shutdown(self) -> None:
        """Stop accepting; requests in progress get ``graceful_s`` to finish; idempotent."""
        server, task = self._server, self._task
        self._server = self._task = None
        if server is None or task is None:
            return
        server.should_exit = True
        # uvicorn closes connections itself after ``graceful_s``; the margin covers that
        await asyncio.wait([task], timeout=self._graceful_s + 5)
        await cancel_and_wait([task])  # a no-op once it ended; raises what it failed with

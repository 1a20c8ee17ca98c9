"""Bearer-token authentication for the collectors' HTTP port (query API, remote_write, /metrics).

An ASGI middleware in front of the whole app: a request without ``Authorization: Bearer
<token>`` is answered ``401`` with ``WWW-Authenticate: Bearer`` before any route runs, so it
costs one header compare and its body says nothing but "unauthorized" (under ``/api/v1/``
in Prometheus' error envelope, which Grafana and Prometheus clients display as such). The
probes stay open (``/``, ``/-/healthy``, ``/-/ready``: a kubelet sends no credentials and
they return no data). The token file is re-read when it changes, so a rotated Kubernetes
Secret needs no restart; the compare takes constant time. TLS and mutual TLS are uvicorn's
(``collectors._kits.http_server.ServerTls``); ``check_security`` validates both at start-up.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Iterable
from pathlib import Path

from starlette.types import ASGIApp, Receive, Scope, Send

from collectors._core.errors import ConfigError

log = logging.getLogger(__name__)

PROBE_PATHS = frozenset({"/", "/-/healthy", "/-/ready"})
"""Answered without a token (liveness and readiness; no data in them)."""

_DENIED = "missing or wrong bearer token"


def check_security(
    *,
    cert: tuple[str, Path | None],
    key: tuple[str, Path | None],
    client_ca: tuple[str, Path | None],
    token_file: tuple[str, Path | None],
) -> None:
    """``ConfigError`` naming the setting (each argument is its name and its value) when
    TLS material is incomplete, a file is missing or the token file is empty."""
    (cert_name, cert_path), (key_name, key_path) = cert, key
    if (cert_path is None) != (key_path is None):
        missing = key_name if key_path is None else cert_name
        raise ConfigError(f"{missing} is not set: {cert_name} and {key_name} go together")
    if client_ca[1] is not None and cert_path is None:
        raise ConfigError(f"{client_ca[0]} (mutual TLS) needs {cert_name} and {key_name}")
    for name, path in (cert, key, client_ca, token_file):
        if path is not None and not path.is_file():
            raise ConfigError(f"{name} {str(path)!r} is not a readable file; fix the path")
    if token_file[1] is not None:
        read_token(token_file[1], name=token_file[0])


def read_token(path: Path, *, name: str) -> str:
    """The token in ``path``, stripped; ``ConfigError`` when unreadable or empty."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{name} {str(path)!r} cannot be read: {e}") from e
    if not token:
        raise ConfigError(f"{name} {str(path)!r} is empty; write the token into it")
    return token


class TokenFile:
    """The expected ``Authorization`` value, re-read when the file's (inode, mtime, size)
    change; an unreadable or emptied file keeps the previous token (and says so once)."""

    def __init__(self, path: Path, *, name: str) -> None:
        self._path, self._name = path, name
        self._header = b"Bearer " + read_token(path, name=name).encode()
        self._stamp = self._stat()

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = self._path.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def accepts(self, authorization: bytes | None) -> bool:
        stamp = self._stat()
        if stamp is not None and stamp != self._stamp:
            self._stamp = stamp
            try:
                self._header = b"Bearer " + read_token(self._path, name=self._name).encode()
            except ConfigError as e:
                log.warning("keeping the previous HTTP token: %s", e)
        return authorization is not None and hmac.compare_digest(authorization, self._header)


class BearerAuth:
    """ASGI middleware: ``app`` behind the token, but for ``open_paths``."""

    def __init__(self, app: ASGIApp, *, token: TokenFile, open_paths: Iterable[str]) -> None:
        self._app = app
        self._token = token
        self._open = frozenset(open_paths)
        self.refused = 0
        """Requests refused so far."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._open:
            await self._app(scope, receive, send)
            return
        authorization = next(
            (v for k, v in scope.get("headers", ()) if k == b"authorization"), None
        )
        if self._token.accepts(authorization):
            await self._app(scope, receive, send)
            return
        self.refused += 1
        await _refuse(scope["path"], send)


async def _refuse(path: str, send: Send) -> None:
    if path.startswith("/api/v1/"):
        envelope = {"status": "error", "errorType": "unauthorized", "error": _DENIED}
        body, media = json.dumps(envelope).encode(), b"application/json"
    else:
        body, media = b"unauthorized: " + _DENIED.encode() + b"\n", b"text/plain; charset=utf-8"
    headers = [
        (b"content-type", media),
        (b"content-length", str(len(body)).encode()),
        (b"www-authenticate", b"Bearer"),
    ]
    await send({"type": "http.response.start", "status": 401, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def protect(
    app: ASGIApp, *, token_file: Path | None, name: str, open_paths: Iterable[str] = PROBE_PATHS
) -> ASGIApp:
    """``app`` behind ``BearerAuth`` when ``token_file`` is set (``name`` is its setting)."""
    if token_file is None:
        return app
    return BearerAuth(app, token=TokenFile(token_file, name=name), open_paths=open_paths)

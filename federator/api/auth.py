"""Who may call the status API: server TLS credentials and a bearer-token interceptor.

TLS and mutual TLS are gRPC's own (``grpc.ssl_server_credentials``): a client without a
certificate the CA signed is refused during the handshake, before any RPC exists. The token
is checked by a server interceptor on every RPC except ``grpc.health.v1.Health`` (Kubernetes
probes send no credentials, and health tells nothing but SERVING); a missing or wrong token
ends the call with UNAUTHENTICATED before the servicer runs, so nothing is computed or leaked.
The token file is re-read when it changes (a rotated Kubernetes Secret is a new file behind a
symlink), compared in constant time, and a file that turns unreadable keeps the last token.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc

from federator.core.config_security import ApiSecuritySettings, read_token
from federator.errors import ConfigError

log = logging.getLogger(__name__)

OPEN_PREFIXES = ("/grpc.health.v1.Health/",)
"""Methods anyone may call (probes)."""

DENIED = "missing or wrong bearer token (send metadata authorization: Bearer <token>)"


def server_credentials(settings: ApiSecuritySettings) -> Any:
    """``grpc.ServerCredentials`` for ``settings`` (which must have TLS on)."""
    assert settings.cert_file is not None and settings.key_file is not None
    ca = settings.client_ca_file.read_bytes() if settings.client_ca_file else None
    return grpc.ssl_server_credentials(
        [(settings.key_file.read_bytes(), settings.cert_file.read_bytes())],
        root_certificates=ca,
        require_client_auth=ca is not None,
    )


class TokenFile:
    """The expected token, re-read from ``path`` whenever the file's identity changes."""

    def __init__(self, path: Path, *, where: str = "api.tokenFile") -> None:
        self._path = path
        self._where = where
        self._stamp: tuple[int, int, int] | None = None
        self._expected = read_token(path, where=where).encode()
        self._stamp = self._stat()

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = self._path.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def expected(self) -> bytes:
        stamp = self._stat()
        if stamp is not None and stamp != self._stamp:
            try:
                self._expected = read_token(self._path, where=self._where).encode()
            except ConfigError as exc:
                log.warning("keeping the previous API token: %s", exc)
            else:
                log.info("API token reloaded from %s", self._path)
            self._stamp = stamp
        return self._expected

    def accepts(self, authorization: str | bytes | None) -> bool:
        """Whether an ``authorization`` header value carries the expected token."""
        if authorization is None:
            return False
        raw = authorization.encode() if isinstance(authorization, str) else authorization
        return hmac.compare_digest(raw, b"Bearer " + self.expected())


class BearerTokenInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Refuses every RPC but health without the token, with UNAUTHENTICATED."""

    def __init__(self, token: TokenFile) -> None:
        self._token = token
        self.refused = 0
        """RPCs refused so far (tests and debugging)."""

    async def intercept_service(
        self,
        continuation: Callable[[Any], Awaitable[Any]],
        handler_call_details: Any,
    ) -> Any:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method or ""
        if handler is None or method.startswith(OPEN_PREFIXES):
            return handler
        metadata = dict(handler_call_details.invocation_metadata or ())
        if self._token.accepts(metadata.get("authorization")):
            return handler
        self.refused += 1
        return _denied(handler)


async def _deny_unary(request: Any, context: Any) -> Any:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, DENIED)


async def _deny_stream(request: Any, context: Any) -> AsyncIterator[Any]:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, DENIED)
    yield  # pragma: no cover - abort raises


def _denied(handler: Any) -> Any:
    """A handler of the same kind as ``handler`` that only refuses the call."""
    codec = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(_deny_unary, **codec)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(_deny_stream, **codec)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(_deny_unary, **codec)
    return grpc.stream_stream_rpc_method_handler(_deny_stream, **codec)

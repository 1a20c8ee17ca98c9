"""Who may call the status API: the port's TLS context and the bearer-token gate.

TLS and mutual TLS are the port's (``server_ssl_context``): a client without a certificate
the CA signed is refused during the handshake, before any RPC exists. The token is checked
by ``TokenGate`` before the servicer runs, on every RPC except ``grpc.health.v1.Health``
(Kubernetes probes send no credentials, and health tells nothing but SERVING); a missing or
wrong token ends the call with UNAUTHENTICATED, so nothing is computed or leaked.
The token file is re-read when it changes (a rotated Kubernetes Secret is a new file behind a
symlink), compared in constant time, and a file that turns unreadable keeps the last token.
"""

from __future__ import annotations

import hmac
import logging
import ssl
from pathlib import Path
from typing import Any

from grpclib.const import Status
from grpclib.exceptions import GRPCError

from federator.core.config_security import ApiSecuritySettings, read_token
from federator.errors import ConfigError
from federator.kube.token_file import FileStamp

log = logging.getLogger(__name__)

OPEN_PREFIXES = ("/grpc.health.v1.Health/",)
"""Methods anyone may call (probes)."""

DENIED = "missing or wrong bearer token (send metadata authorization: Bearer <token>)"


def server_ssl_context(settings: ApiSecuritySettings) -> ssl.SSLContext:
    """The port's TLS context for ``settings`` (which must have TLS on): HTTP/2 by ALPN, as
    gRPC clients require; the client's certificate required when a client CA is set."""
    assert settings.cert_file is not None and settings.key_file is not None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.cert_file, settings.key_file)
    if settings.client_ca_file is not None:
        context.load_verify_locations(cafile=str(settings.client_ca_file))
        context.verify_mode = ssl.CERT_REQUIRED
    context.set_alpn_protocols(["h2"])
    return context


class TokenFile:
    """The expected token, re-read from ``path`` whenever the file's identity changes."""

    def __init__(self, path: Path, *, where: str = "api.tokenFile") -> None:
        self._path = path
        self._where = where
        self._stamp = FileStamp(path)
        self._expected = read_token(path, where=where).encode()
        self._stamp.note_current()

    def expected(self) -> bytes:
        try:
            stamp = self._stamp.look()
        except OSError:
            return self._expected
        if stamp is not None:
            try:
                self._expected = read_token(self._path, where=self._where).encode()
            except ConfigError as exc:
                log.warning("keeping the previous API token: %s", exc)
            else:
                log.info("API token reloaded from %s", self._path)
            self._stamp.note(stamp)
        return self._expected

    def accepts(self, authorization: str | bytes | None) -> bool:
        """Whether an ``authorization`` header value carries the expected token."""
        if authorization is None:
            return False
        raw = authorization.encode() if isinstance(authorization, str) else authorization
        return hmac.compare_digest(raw, b"Bearer " + self.expected())


class TokenGate:
    """Refuses every RPC but health without the token, with UNAUTHENTICATED."""

    def __init__(self, token: TokenFile) -> None:
        self._token = token
        self.refused = 0
        """RPCs refused so far (tests and debugging)."""

    def check(self, method: str, metadata: Any) -> None:
        """Raise UNAUTHENTICATED unless ``method`` is open or ``metadata`` has the token."""
        if method.startswith(OPEN_PREFIXES):
            return
        if self._token.accepts(metadata.get("authorization") if metadata else None):
            return
        self.refused += 1
        raise GRPCError(Status.UNAUTHENTICATED, DENIED)

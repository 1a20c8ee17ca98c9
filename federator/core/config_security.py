"""Security of the federator's gRPC status API: TLS, mutual TLS and a bearer token.

The ``api:`` section of ``federation.yaml`` (docs/api.md, "Authentication and TLS settings").
Kept apart from ``federator.core.config`` so that module stays a list of the federation's own
fields; it holds one ``ApiSecuritySettings`` and calls ``validate()``. Secrets are named by
file (a mounted Kubernetes Secret), never written into the config, so the config can live in
a ConfigMap and a rotated Secret needs no config change. ``validate()`` checks the files exist
and the token file is not empty, at start-up, with the field's YAML path in the message.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from federator.core.config_checks import Fields
from federator.errors import ConfigError

_TLS_KEYS = {"certFile": "cert_file", "keyFile": "key_file", "clientCAFile": "client_ca_file"}


@dataclass(frozen=True, slots=True)
class ApiSecuritySettings:
    """How the gRPC status API authenticates clients (all off: plaintext, no token)."""

    cert_file: Path | None = None
    """``api.tls.certFile``: server certificate chain (PEM); with ``key_file`` turns TLS on."""
    key_file: Path | None = None
    """``api.tls.keyFile``: private key (PEM) of ``cert_file``."""
    client_ca_file: Path | None = None
    """``api.tls.clientCAFile``: CA bundle (PEM) that client certificates must chain to; set,
    every client must present one (mutual TLS). Needs ``cert_file`` and ``key_file``."""
    token_file: Path | None = None
    """``api.tokenFile``: file holding the bearer token every RPC (but health) must carry as
    ``authorization: Bearer <token>``; re-read when the file changes."""

    @property
    def tls(self) -> bool:
        return self.cert_file is not None

    @property
    def mode(self) -> str:
        """For the start-up log line: ``plaintext``, ``TLS`` or ``mTLS``, ``+ token``."""
        base = "mTLS" if self.client_ca_file else "TLS" if self.tls else "plaintext"
        return f"{base} + token" if self.token_file else base

    def validate(self) -> None:
        """Raise ``ConfigError`` naming the first bad field and the fix."""
        if (self.cert_file is None) != (self.key_file is None):
            missing = "api.tls.keyFile" if self.key_file is None else "api.tls.certFile"
            raise ConfigError(
                f"{missing} is not set: api.tls.certFile and api.tls.keyFile go together"
            )
        if self.client_ca_file is not None and self.cert_file is None:
            raise ConfigError(
                "api.tls.clientCAFile (mutual TLS) needs api.tls.certFile and api.tls.keyFile"
            )
        for where, path in (
            ("api.tls.certFile", self.cert_file),
            ("api.tls.keyFile", self.key_file),
            ("api.tls.clientCAFile", self.client_ca_file),
            ("api.tokenFile", self.token_file),
        ):
            if path is not None and not path.is_file():
                raise ConfigError(f'{where} "{path}" is not a readable file: fix the path')
        if self.token_file is not None:
            read_token(self.token_file, where="api.tokenFile")


def read_token(path: Path, *, where: str) -> str:
    """The token in ``path`` without surrounding whitespace; ``ConfigError`` if it cannot be
    read or is empty (an empty token would let every client in)."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f'{where} "{path}" cannot be read: {exc}') from exc
    if not token:
        raise ConfigError(f'{where} "{path}" is empty: write the token into it')
    return token


def parse_api_security(value: Any, *, base_dir: Path | None) -> ApiSecuritySettings:
    """The ``api:`` mapping of ``federation.yaml``; paths relative to ``base_dir`` (the
    config file's directory). Unknown keys and wrong types are a ``ConfigError``."""
    if value is None:
        return ApiSecuritySettings()
    api = Fields(value, "api")
    values: dict[str, Path] = {}
    if (token := api.opt_str("tokenFile")) is not None:
        values["token_file"] = _path(token, base_dir)
    if (raw := api.get("tls")) is not None:
        tls = Fields(raw, "api.tls")
        for key, name in _TLS_KEYS.items():
            if (text := tls.opt_str(key)) is not None:
                values[name] = _path(text, base_dir)
        tls.finish()
    api.finish()
    return ApiSecuritySettings(**values)


def _path(text: str, base_dir: Path | None) -> Path:
    path = Path(text)
    return path if path.is_absolute() or base_dir is None else base_dir / path

"""Security of the federator's gRPC status API and HTTP port: TLS, mutual TLS, a bearer token.

The ``api:`` section of ``federation.yaml`` (docs/api.md, "Authentication and TLS settings")
and the ``http:`` section, the same fields for the /metrics, /healthz, /readyz port plus
``protectProbes`` (docs/security.md).
Kept apart from ``federator.core.config`` so that module stays a list of the federation's own
fields; it holds one ``ApiSecuritySettings`` and calls ``validate()``. Secrets are named by
file (a mounted Kubernetes Secret), never written into the config, so the config can live in
a ConfigMap and a rotated Secret needs no config change. ``validate()`` checks the files exist
and the token file is not empty, at start-up, with the field's YAML path in the message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
    section: str = "api"
    """The YAML section these came from, for messages (``api`` or ``http``)."""

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
        s = self.section
        if (self.cert_file is None) != (self.key_file is None):
            missing = f"{s}.tls.keyFile" if self.key_file is None else f"{s}.tls.certFile"
            raise ConfigError(
                f"{missing} is not set: {s}.tls.certFile and {s}.tls.keyFile go together"
            )
        if self.client_ca_file is not None and self.cert_file is None:
            raise ConfigError(
                f"{s}.tls.clientCAFile (mutual TLS) needs {s}.tls.certFile and {s}.tls.keyFile"
            )
        for where, path in (
            (f"{s}.tls.certFile", self.cert_file),
            (f"{s}.tls.keyFile", self.key_file),
            (f"{s}.tls.clientCAFile", self.client_ca_file),
            (f"{s}.tokenFile", self.token_file),
        ):
            if path is not None and not path.is_file():
                raise ConfigError(f'{where} "{path}" is not a readable file: fix the path')
        if self.token_file is not None:
            read_token(self.token_file, where=f"{s}.tokenFile")


@dataclass(frozen=True, slots=True)
class HttpSecuritySettings:
    """The ``http:`` section: who may read the HTTP port (/metrics, /healthz, /readyz).

    Off by default (plaintext, open), as before. With a token, ``/metrics`` needs it; the
    probes stay open unless ``protectProbes`` (a kubelet's httpGet probe sends no credentials,
    and they tell nothing but ok/ready and the replica's role)."""

    transport: ApiSecuritySettings = field(
        default_factory=lambda: ApiSecuritySettings(section="http")
    )
    """``http.tokenFile`` and ``http.tls.*``: the same fields and rules as ``api:``."""
    protect_probes: bool = False
    """``http.protectProbes``: also require the token on /healthz and /readyz (then probe
    with an exec or TCP probe, or a kubelet that can send the header)."""

    def validate(self) -> None:
        """Raise ``ConfigError`` naming the first bad field and the fix."""
        self.transport.validate()
        if self.protect_probes and self.transport.token_file is None:
            raise ConfigError(
                "http.protectProbes needs http.tokenFile: set the token file or drop protectProbes"
            )


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


def parse_api_security(
    value: Any, *, base_dir: Path | None, section: str = "api"
) -> ApiSecuritySettings:
    """The ``api:`` mapping of ``federation.yaml``; paths relative to ``base_dir`` (the
    config file's directory). Unknown keys and wrong types are a ``ConfigError``."""
    if value is None:
        return ApiSecuritySettings(section=section)
    api = Fields(value, section)
    return _transport(api, base_dir=base_dir, section=section)


def parse_http_security(value: Any, *, base_dir: Path | None) -> HttpSecuritySettings:
    """The ``http:`` mapping: ``tokenFile``, ``tls`` (as in ``api:``) and ``protectProbes``."""
    if value is None:
        return HttpSecuritySettings()
    http = Fields(value, "http")
    protect = http.get("protectProbes")
    if protect is not None and not isinstance(protect, bool):
        raise ConfigError(f"http.protectProbes must be true or false, got {protect!r}")
    transport = _transport(http, base_dir=base_dir, section="http")
    return HttpSecuritySettings(transport=transport, protect_probes=bool(protect))


def _transport(fields: Fields, *, base_dir: Path | None, section: str) -> ApiSecuritySettings:
    """``tokenFile`` and ``tls`` of ``fields``, then no other key may be left."""
    values: dict[str, Path] = {}
    if (token := fields.opt_str("tokenFile")) is not None:
        values["token_file"] = _path(token, base_dir)
    if (raw := fields.get("tls")) is not None:
        tls = Fields(raw, f"{section}.tls")
        for key, name in _TLS_KEYS.items():
            if (text := tls.opt_str(key)) is not None:
                values[name] = _path(text, base_dir)
        tls.finish()
    fields.finish()
    return ApiSecuritySettings(section=section, **values)


def _path(text: str, base_dir: Path | None) -> Path:
    path = Path(text)
    return path if path.is_absolute() or base_dir is None else base_dir / path

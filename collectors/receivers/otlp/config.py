"""Settings of the OTLP receivers (gRPC on 4317, HTTP on 4318), validated before any socket opens.

One frozen group for both transports, because they share every bound that matters for memory
(message size, concurrent requests) and the optional mTLS material. ``validate()`` raises
:class:`collectors._core.errors.ConfigError` naming the field and the fix; ``from_mapping``
reads the ``otlp:`` section of the collector's YAML.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from collectors._core.errors import ConfigError
from collectors._core.net import parse_host_port

MIB = 1024 * 1024
_MAX_MESSAGE_CAP = 256 * MIB


@dataclass(frozen=True, slots=True)
class OtlpSettings:
    """Both OTLP receivers' settings (the ``otlp:`` section)."""

    grpc_listen: str = "127.0.0.1:4317"
    """Address of the gRPC receiver (``host:port``; port 0 picks a free port)."""
    http_listen: str = "127.0.0.1:4318"
    """Address of the HTTP receiver (``/v1/traces``, ``/v1/metrics``, ``/v1/logs``)."""
    max_message_bytes: int = 4 * MIB
    """Largest request accepted, after decompression: a bigger gRPC message gets
    RESOURCE_EXHAUSTED, a bigger HTTP body 413. gRPC's own hard cap is twice this value
    (messages between the two are refused by meshfed and counted; above, by gRPC itself)."""
    max_concurrent_requests: int = 16
    """Requests being decoded or written at once per receiver; more get UNAVAILABLE (gRPC) or
    429 (HTTP) with a retry delay. Bounds memory at about this many x ``max_message_bytes``
    of wire data plus its decoded records."""
    retry_after_s: int = 2
    """Delay suggested to senders on retryable refusals (gRPC RetryInfo, HTTP Retry-After)."""
    tls_cert_file: Path | None = None
    """Server certificate (PEM). With ``tls_key_file`` it turns TLS on for both receivers."""
    tls_key_file: Path | None = None
    """Private key (PEM) of ``tls_cert_file``."""
    tls_client_ca_file: Path | None = None
    """CA bundle (PEM) that client certificates must chain to; setting it requires a client
    certificate on every connection (mTLS). Needs ``tls_cert_file`` and ``tls_key_file``."""

    @property
    def tls_enabled(self) -> bool:
        return self.tls_cert_file is not None

    @property
    def grpc_address(self) -> tuple[str, int]:
        return parse_host_port(self.grpc_listen, field="otlp.grpc_listen")

    @property
    def http_address(self) -> tuple[str, int]:
        return parse_host_port(self.http_listen, field="otlp.http_listen")

    def validate(self) -> None:
        """Raise ``ConfigError`` for the first invalid field, naming it and the fix."""
        self.grpc_address  # noqa: B018 - parses and raises ConfigError
        self.http_address  # noqa: B018
        if not 1024 <= self.max_message_bytes <= _MAX_MESSAGE_CAP:
            raise ConfigError(
                f"otlp.max_message_bytes must be in 1024..{_MAX_MESSAGE_CAP} "
                f"(256 MiB); got {self.max_message_bytes}"
            )
        if not 1 <= self.max_concurrent_requests <= 4096:
            raise ConfigError(
                "otlp.max_concurrent_requests must be in 1..4096; "
                f"got {self.max_concurrent_requests}"
            )
        if not 0 <= self.retry_after_s <= 3600:
            raise ConfigError(f"otlp.retry_after_s must be in 0..3600; got {self.retry_after_s}")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ConfigError(
                "otlp.tls_cert_file and otlp.tls_key_file must be set together (or neither)"
            )
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ConfigError(
                "otlp.tls_client_ca_file (mTLS) needs otlp.tls_cert_file and otlp.tls_key_file"
            )
        for name in ("tls_cert_file", "tls_key_file", "tls_client_ca_file"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ConfigError(f"otlp.{name}: {path} is not a readable file; fix the path")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> OtlpSettings:
        """Settings from the YAML ``otlp:`` mapping; unknown keys are a ``ConfigError``."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"otlp.{unknown[0]} is not a known setting; known: {', '.join(sorted(known))}"
            )
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key.startswith("tls_"):
                values[key] = None if value in (None, "") else Path(str(value))
            elif key in ("grpc_listen", "http_listen"):
                if not isinstance(value, str):
                    raise ConfigError(f"otlp.{key} must be a 'host:port' string; got {value!r}")
                values[key] = value
            else:
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ConfigError(f"otlp.{key} must be an integer; got {value!r}")
                values[key] = value
        settings = cls(**values)
        settings.validate()
        return settings

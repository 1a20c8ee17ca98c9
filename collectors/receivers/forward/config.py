"""Settings of the Fluentd Forward receiver (TCP/TLS + UDP heartbeat), validated before any socket.

One frozen group holds every bound that decides memory: wire message size, decompressed size,
container lengths, nesting depth and records per store write, together with the connection
limits, the optional TLS material and the optional shared-key handshake (with users).
``validate()`` raises :class:`collectors._core.errors.ConfigError` naming the field and the fix;
``from_mapping`` reads the ``forward:`` section of the collector's YAML.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from collectors._core.errors import ConfigError
from collectors._core.net import parse_host_port
from collectors.receivers.forward.protocol.message import ForwardLimits

MIB = 1024 * 1024
_MAX_BYTES_CAP = 1024 * MIB


@dataclass(frozen=True, slots=True)
class ForwardUser:
    """A username/password pair for the handshake's optional user authentication."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class ForwardSettings:
    """The Forward receiver's settings (the ``forward:`` section)."""

    listen: str = "127.0.0.1:24224"
    """TCP (or TLS) address; the UDP heartbeat listens on the same host and port. Port 0 picks
    a free port (the UDP socket then takes the same number)."""
    udp_heartbeat: bool = True
    """Answer UDP heartbeats (any datagram) with one ``0x00`` byte, as Fluentd does."""
    max_connections: int = 256
    """Concurrent TCP connections; more are closed at once and counted
    (``rejected{reason="too_many_connections"}``)."""
    max_message_bytes: int = 8 * MIB
    """Largest msgpack message on the wire (Fluentd's default buffer chunk is 8 MB). A bigger
    message closes the connection (``too_large``). Memory per connection is about this much
    wire data plus one batch of records."""
    max_decompressed_bytes: int = 16 * MIB
    """Largest decompressed payload of one CompressedPackedForward message (all gzip members).
    It is decompressed in 256 KiB steps and refused as soon as it passes this bound."""
    max_container_len: int = 262_144
    """Longest msgpack array or map (entries of a Forward message, fields of a record); a
    longer header is refused before anything is allocated."""
    max_depth: int = 32
    """Deepest nesting of maps and arrays inside a record; a deeper record is skipped."""
    max_batch_records: int = 5_000
    """Records per sink write; a bigger message is written in several batches and acked once
    after the last one."""
    read_chunk_bytes: int = 256 * 1024
    """Bytes read from a socket at a time. Nothing more is read while a write is pending, so
    the kernel's window throttles a sender whose store writes are slow."""
    idle_timeout_s: float = 300.0
    """A connection that sends nothing for this long is closed."""
    handshake_timeout_s: float = 10.0
    """With a shared key, a client must complete PING within this time."""
    shutdown_grace_s: float = 10.0
    """On shutdown, messages being written get this long to be stored and acked."""
    tls_cert_file: Path | None = None
    """Server certificate (PEM); with ``tls_key_file`` the TCP listener speaks TLS."""
    tls_key_file: Path | None = None
    """Private key (PEM) of ``tls_cert_file``."""
    tls_client_ca_file: Path | None = None
    """CA bundle that client certificates must chain to; requires a client certificate."""
    shared_key: str | None = field(default=None, repr=False)
    """Turns the HELO/PING/PONG handshake on: clients must prove this key (Fluentd
    ``<security> shared_key``). Without it, any client on the network may send."""
    self_hostname: str = "meshfed"
    """Server name sent in PONG (must differ from the clients' own hostnames)."""
    users: tuple[ForwardUser, ...] = field(default=(), repr=False)
    """With a shared key, also require one of these username/password pairs."""

    @property
    def address(self) -> tuple[str, int]:
        return parse_host_port(self.listen, field="forward.listen")

    @property
    def tls_enabled(self) -> bool:
        return self.tls_cert_file is not None

    @property
    def limits(self) -> ForwardLimits:
        """The parser's bounds derived from these settings."""
        return ForwardLimits(
            max_message_bytes=self.max_message_bytes,
            max_decompressed_bytes=self.max_decompressed_bytes,
            max_container_len=self.max_container_len,
            max_depth=self.max_depth,
        )

    def validate(self) -> None:
        """Raise ``ConfigError`` for the first invalid field, naming it and the fix."""
        self.address  # noqa: B018 - parses and raises ConfigError
        for name in ("max_message_bytes", "max_decompressed_bytes"):
            value = getattr(self, name)
            if not 1024 <= value <= _MAX_BYTES_CAP:
                raise ConfigError(f"forward.{name} must be in 1024..{_MAX_BYTES_CAP}; got {value}")
        bounds = {
            "max_connections": (1, 65_536),
            "max_container_len": (16, 16_777_216),
            "max_depth": (2, 512),
            "max_batch_records": (1, 1_000_000),
            "read_chunk_bytes": (1024, 16 * MIB),
        }
        for name, (low, high) in bounds.items():
            value = getattr(self, name)
            if not low <= value <= high:
                raise ConfigError(f"forward.{name} must be in {low}..{high}; got {value}")
        for name in ("idle_timeout_s", "handshake_timeout_s", "shutdown_grace_s"):
            if not 0 < getattr(self, name) <= 86_400:
                raise ConfigError(f"forward.{name} must be in (0, 86400] seconds")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ConfigError(
                "forward.tls_cert_file and forward.tls_key_file must be set together (or neither)"
            )
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ConfigError(
                "forward.tls_client_ca_file needs forward.tls_cert_file and forward.tls_key_file"
            )
        for name in ("tls_cert_file", "tls_key_file", "tls_client_ca_file"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ConfigError(f"forward.{name}: {path} is not a readable file; fix the path")
        if self.shared_key is not None and not self.shared_key:
            raise ConfigError("forward.shared_key must not be empty; remove it or set a secret")
        if self.users and self.shared_key is None:
            raise ConfigError(
                "forward.users needs forward.shared_key (users ride on the handshake)"
            )
        if not self.self_hostname:
            raise ConfigError("forward.self_hostname must not be empty")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ForwardSettings:
        """Settings from the YAML ``forward:`` mapping; unknown keys are a ``ConfigError``."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"forward.{unknown[0]} is not a known setting; known: {', '.join(sorted(known))}"
            )
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key.startswith("tls_"):
                values[key] = None if value in (None, "") else Path(str(value))
            elif key in ("listen", "self_hostname", "shared_key"):
                if value is None and key == "shared_key":
                    values[key] = None
                elif not isinstance(value, str):
                    raise ConfigError(f"forward.{key} must be a string; got {value!r}")
                else:
                    values[key] = value
            elif key == "users":
                values[key] = _users(value)
            elif key == "udp_heartbeat":
                if not isinstance(value, bool):
                    raise ConfigError(f"forward.udp_heartbeat must be true or false; got {value!r}")
                values[key] = value
            elif key.endswith("_s"):
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ConfigError(f"forward.{key} must be a number of seconds; got {value!r}")
                values[key] = float(value)
            else:
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ConfigError(f"forward.{key} must be an integer; got {value!r}")
                values[key] = value
        settings = cls(**values)
        settings.validate()
        return settings


def _users(value: Any) -> tuple[ForwardUser, ...]:
    if not isinstance(value, list):
        raise ConfigError("forward.users must be a list of {username, password} mappings")
    users = []
    for i, item in enumerate(value):
        if (
            not isinstance(item, Mapping)
            or set(item) != {"username", "password"}
            or not all(isinstance(v, str) and v for v in item.values())
        ):
            raise ConfigError(
                f"forward.users[{i}] must be a mapping with non-empty 'username' and 'password'"
            )
        users.append(ForwardUser(username=item["username"], password=item["password"]))
    return tuple(users)

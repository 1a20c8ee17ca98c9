"""The console's settings: where the federator and the store are, and how to reach them.

A frozen dataclass validated at start-up, so a wrong flag fails with a message that names the
flag and the fix instead of a page that shows errors later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit


class ConsoleSettingsError(ValueError):
    """A setting that cannot work; the message names the flag and the fix."""


@dataclass(frozen=True)
class GrpcTarget:
    """The federator's gRPC API (``listen.grpc`` of its config) and its credentials."""

    address: str = "127.0.0.1:50051"
    token_file: Path | None = None
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    server_name: str = ""
    timeout_s: float = 10.0


@dataclass(frozen=True)
class StoreTarget:
    """The store's HTTP query API (``http.listen`` of ``meshfed collect``) and its credentials."""

    url: str = "http://127.0.0.1:9201"
    token_file: Path | None = None
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    timeout_s: float = 10.0
    series_cap: int = 500_000
    """The store's ``store.limits.max_series_per_tenant`` (not exported by the store)."""


@dataclass(frozen=True)
class IstiodPlace:
    """One cluster's istiod (plaintext xDS ``host:port``) and where a sidecar there sits."""

    cluster: str
    address: str
    region: str = ""
    zone: str = ""
    network: str = ""


def parse_istiods(values: list[str]) -> tuple[IstiodPlace, ...]:
    """``--istiod NAME=HOST:PORT`` values; a malformed one names the flag and the form."""
    places = []
    for value in values:
        name, sep, address = value.partition("=")
        host, colon, port = address.rpartition(":")
        if not sep or not name or not colon or not host or not port.isdigit():
            raise ConsoleSettingsError(
                f"--istiod {value!r}: write NAME=HOST:PORT, e.g. c1=127.0.0.1:15010 "
                "(the cluster's name and its istiod's plaintext xDS port)"
            )
        places.append(IstiodPlace(cluster=name, address=address))
    return tuple(places)


@dataclass(frozen=True)
class ConsoleSettings:
    """Everything ``meshfed console`` needs; ``validate()`` before use."""

    federator: GrpcTarget = field(default_factory=GrpcTarget)
    store: StoreTarget = field(default_factory=StoreTarget)
    host: str = "127.0.0.1"
    port: int = 9300
    federator_metrics: str = ""
    """Optional URL of the federator's ``/metrics`` (its ``listen.http``): propagation latency."""
    sse_keepalive_s: float = 15.0
    istiods: tuple[IstiodPlace, ...] = ()
    """istiods to ask what they serve for a service (the Service page); none: not shown."""

    def validate(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConsoleSettingsError(f"--port {self.port} is not a TCP port (0..65535)")
        if ":" not in self.federator.address:
            raise ConsoleSettingsError(
                f"--federator {self.federator.address!r} needs host:port, e.g. 127.0.0.1:50051"
            )
        for name, url in (
            ("--store", self.store.url),
            ("--federator-metrics", self.federator_metrics),
        ):
            if not url:
                continue
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ConsoleSettingsError(
                    f"{name} {url!r} is not an http(s) URL, e.g. http://127.0.0.1:9201"
                )
        if (self.federator.cert is None) != (self.federator.key is None):
            raise ConsoleSettingsError("--federator-cert and --federator-key go together")
        if self.federator.cert is not None and self.federator.ca is None:
            raise ConsoleSettingsError("--federator-cert needs --federator-ca (TLS)")
        if (self.store.cert is None) != (self.store.key is None):
            raise ConsoleSettingsError("--store-cert and --store-key go together")
        seen = [p.cluster for p in self.istiods]
        if len(set(seen)) != len(seen):
            raise ConsoleSettingsError(f"--istiod names a cluster twice: {', '.join(seen)}")
        if self.store.series_cap <= 0:
            raise ConsoleSettingsError("--series-cap must be a positive number of series")
        for name, path in (
            ("--federator-token-file", self.federator.token_file),
            ("--federator-ca", self.federator.ca),
            ("--federator-cert", self.federator.cert),
            ("--federator-key", self.federator.key),
            ("--store-token-file", self.store.token_file),
            ("--store-ca", self.store.ca),
            ("--store-cert", self.store.cert),
            ("--store-key", self.store.key),
        ):
            if path is not None and not path.is_file():
                raise ConsoleSettingsError(f"{name} {path}: no such file")


def read_token(path: Path | None, flag: str) -> str:
    """The bearer token in ``path`` (whitespace stripped); empty when no file is given."""
    if path is None:
        return ""
    token = path.read_text(encoding="utf-8", errors="replace").strip()
    if not token:
        raise ConsoleSettingsError(f"{flag} {path} is empty: put the bearer token in it")
    return token

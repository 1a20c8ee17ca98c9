"""``meshfed collect`` configuration: one YAML file, every field also settable by a flag.

Grouped frozen settings — resource labels, the HTTP listener, the store, the pipeline, the
Prometheus receivers (remote_write, pull) and the StatsD, Forward and OTLP receivers, each
section parsed by its owner's settings class (``from_mapping``). Command-line flags are
applied to the raw mapping before parsing (``--set section.field=value`` for any field,
shortcuts such as ``--cluster``), so a file value and a flag go through the same checks.
``validate()`` runs every group's checks plus the cross-group ones and raises
``ConfigError`` naming the field and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from collectors._core.errors import ConfigError
from collectors._core.net import parse_host_port
from collectors._core.settings import build, parse_assignment, set_path
from collectors._kits.http_server import ServerTls
from collectors.app.http_auth import check_security
from collectors.pipeline.memory import MIB
from collectors.pipeline.normalize import ResourceSettings
from collectors.pipeline.pipeline import PipelineSettings
from collectors.receivers.forward.config import ForwardSettings
from collectors.receivers.otlp.config import OtlpSettings
from collectors.receivers.prometheus.config import PullSettings, RemoteWriteSettings
from collectors.receivers.prometheus.remote_write import MEMORY_PER_DECOMPRESSED_BYTE
from collectors.receivers.statsd.config import StatsdSettings
from collectors.store.config import StoreSettings

RECEIVERS = ("remote_write", "pull", "statsd", "forward", "otlp")
"""Receivers that ``--disable`` and ``<section>.enabled`` switch off."""


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """The HTTP listener: query API, ``POST /api/v1/write`` and ``/metrics``; optionally
    HTTPS (mutual TLS with a client CA) and a bearer token on every route but the probes."""

    listen: str = "127.0.0.1:9201"
    """``host:port``; port 0 picks a free port."""
    tls_cert_file: Path | None = None
    """Server certificate (PEM); with ``tls_key_file`` the port speaks HTTPS."""
    tls_key_file: Path | None = None
    """Private key (PEM) of ``tls_cert_file``."""
    tls_client_ca_file: Path | None = None
    """CA bundle (PEM) client certificates must chain to; set, every client needs one (mTLS)."""
    bearer_token_file: Path | None = None
    """File holding the token every request (but ``/``, ``/-/healthy``, ``/-/ready``) must
    send as ``Authorization: Bearer <token>``; re-read when the file changes."""
    public_metrics: bool = False
    """With a token set, serve ``/metrics`` without it."""
    probe_listen: str | None = None
    """``host:port`` of a second, plain-HTTP listener that serves only ``/``, ``/-/healthy``
    and ``/-/ready``, for a kubelet's probes when ``tls_client_ca_file`` makes the main port
    require client certificates (the kubelet presents none, and a TCP probe cannot see that
    the store is unrecoverable). None: no second listener."""

    @property
    def address(self) -> tuple[str, int]:
        return parse_host_port(self.listen, field="http.listen")

    @property
    def probe_address(self) -> tuple[str, int] | None:
        if self.probe_listen is None:
            return None
        return parse_host_port(self.probe_listen, field="http.probe_listen")

    @property
    def tls(self) -> ServerTls | None:
        if self.tls_cert_file is None or self.tls_key_file is None:
            return None
        return ServerTls(self.tls_cert_file, self.tls_key_file, self.tls_client_ca_file)

    def validate(self) -> None:
        self.address  # noqa: B018 - parses and raises ConfigError
        self.probe_address  # noqa: B018 - parses and raises ConfigError
        check_security(
            cert=("http.tls_cert_file", self.tls_cert_file),
            key=("http.tls_key_file", self.tls_key_file),
            client_ca=("http.tls_client_ca_file", self.tls_client_ca_file),
            token_file=("http.bearer_token_file", self.bearer_token_file),
        )


@dataclass(frozen=True, slots=True)
class CollectorConfig:
    """Everything ``meshfed collect`` runs; ``None`` receiver sections are disabled."""

    http: HttpSettings = field(default_factory=HttpSettings)
    """Where the query API, remote_write and /metrics listen."""
    store: StoreSettings = field(default_factory=StoreSettings)
    """The telemetry store (external Redis URL or the embedded server's data dir)."""
    pipeline: PipelineSettings = field(default_factory=PipelineSettings)
    """Resource labels (YAML: the top-level ``resource`` section), batching and memory
    limits shared by every receiver."""
    remote_write: RemoteWriteSettings | None = field(default_factory=RemoteWriteSettings)
    """Prometheus remote_write receiver (on the HTTP listener)."""
    pull: PullSettings | None = None
    """Prometheus federation pull mode (disabled when no targets)."""
    statsd: StatsdSettings | None = field(default_factory=StatsdSettings)
    """StatsD/DogStatsD receiver, UDP and TCP (docs/receivers/statsd.md)."""
    forward: ForwardSettings | None = field(default_factory=ForwardSettings)
    """Fluentd Forward receiver (docs/receivers/forward.md)."""
    otlp: OtlpSettings | None = field(default_factory=OtlpSettings)
    """OTLP gRPC and HTTP receivers (docs/receivers/otlp.md)."""

    def validate(self) -> None:
        self.http.validate()
        self.store.validate()
        self.pipeline.validate()
        for name in RECEIVERS:
            section = getattr(self, name)
            if section is not None:
                section.validate()
        self._check_batches()
        self._check_memory()
        self._check_ports()

    def _check_batches(self) -> None:
        if self.pipeline.batch.max_samples > self.store.limits.max_batch_samples:
            raise ConfigError(
                "pipeline.batch.max_samples must be <= store.limits.max_batch_samples"
                f" ({self.store.limits.max_batch_samples}); lower it"
            )

    def _check_memory(self) -> None:
        budget = self.pipeline.memory.max_in_flight_mib * MIB
        rw = self.remote_write
        if budget and rw is not None:
            need = rw.max_body_bytes + rw.max_decompressed_bytes * MEMORY_PER_DECOMPRESSED_BYTE
            if need > budget:
                raise ConfigError(
                    "pipeline.memory.max_in_flight_mib is too small for one maximal"
                    f" remote_write request ({need // MIB + 1} MiB: max_body_bytes +"
                    f" {MEMORY_PER_DECOMPRESSED_BYTE} x max_decompressed_bytes); raise it or"
                    " lower remote_write.max_decompressed_bytes"
                )

    def _check_ports(self) -> None:
        seen: dict[tuple[str, int], str] = {}
        listeners = [("http.listen", self.http.address)]
        if self.http.probe_address is not None:
            listeners.append(("http.probe_listen", self.http.probe_address))
        if self.statsd is not None and self.statsd.tcp_address is not None:
            listeners.append(("statsd.tcp_listen", self.statsd.tcp_address))
        if self.forward is not None:
            listeners.append(("forward.listen", self.forward.address))
        if self.otlp is not None:
            listeners.append(("otlp.grpc_listen", self.otlp.grpc_address))
            listeners.append(("otlp.http_listen", self.otlp.http_address))
        for name, (host, port) in listeners:
            if port == 0:
                continue
            other = seen.get((host, port))
            if other is not None:
                raise ConfigError(f"{name} and {other} both use {host}:{port}; change one")
            seen[(host, port)] = name


_SECTIONS = ("resource", "http", "store", "pipeline", *RECEIVERS)


def load_mapping(path: Path | None) -> dict[str, Any]:
    """The YAML file as a mapping (``{}`` without a file)."""
    if path is None:
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"--config {path}: cannot read it: {e.strerror}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"--config {path}: not valid YAML: {e}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path}: the top level must be a mapping of sections")
    return data


def apply_overrides(data: dict[str, Any], assignments: Mapping[str, object]) -> None:
    """Set each ``section.field`` of ``assignments`` in the raw mapping (flags win)."""
    for dotted, value in assignments.items():
        set_path(data, dotted, value)


def from_mapping(data: Mapping[str, Any]) -> CollectorConfig:
    """Parse and validate the whole configuration."""
    unknown = sorted(set(data) - set(_SECTIONS))
    if unknown:
        raise ConfigError(f"{unknown[0]} is not a known section; known: {', '.join(_SECTIONS)}")
    values: dict[str, Any] = {
        "http": build(HttpSettings, data.get("http"), "http"),
        "store": build(StoreSettings, data.get("store"), "store"),
        "pipeline": _pipeline(data.get("resource"), data.get("pipeline")),
    }
    defaults = CollectorConfig()
    for name, parse in (
        ("remote_write", lambda m: build(RemoteWriteSettings, m, "remote_write")),
        ("pull", lambda m: build(PullSettings, m, "pull")),
        ("statsd", StatsdSettings.from_mapping),
        ("forward", ForwardSettings.from_mapping),
        ("otlp", OtlpSettings.from_mapping),
    ):
        values[name] = _receiver(name, data.get(name, ...), getattr(defaults, name), parse)
    config = CollectorConfig(**values)
    config.validate()
    return config


def _pipeline(resource: object, pipeline: object) -> PipelineSettings:
    """The pipeline section with the top-level ``resource`` section inside it."""
    if isinstance(pipeline, Mapping) and "resource" in pipeline:
        raise ConfigError("pipeline.resource: write the resource section at the top level")
    settings = build(PipelineSettings, pipeline, "pipeline")
    return replace(settings, resource=build(ResourceSettings, resource, "resource"))


def _receiver(name: str, raw: object, default: object, parse: Any) -> object:
    """A receiver section: absent -> default, ``enabled: false`` -> None, else parsed."""
    if raw is ...:
        return default
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{name} must be a mapping of settings (or enabled: false)")
    section = dict(raw)
    enabled = section.pop("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"{name}.enabled must be true or false; got {enabled!r}")
    if not enabled:
        return None
    return parse(section)


def load(
    path: Path | None, *, overrides: Mapping[str, object], assignments: list[str]
) -> CollectorConfig:
    """File, then shortcut flags (``overrides``), then ``--set`` assignments; validated."""
    data = load_mapping(path)
    apply_overrides(data, overrides)
    apply_overrides(data, dict(parse_assignment(a) for a in assignments))
    return from_mapping(data)

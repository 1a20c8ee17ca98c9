"""The ``drills:`` group of the federation config: whether this federator runs drills, and where
their guards are evaluated.

Guards (``abortWhen``, ``preconditions.notWhen``, ``hypothesis.steadyState``) are PromQL over
meshfed's telemetry store, read through its Prometheus-compatible HTTP API (``queryUrl``); the
federator never links the store's code. Off by default: a federation without drills needs
neither the ``Drill`` CRD nor a store.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from federator.core.config_checks import Fields, check_dns_label
from federator.errors import ConfigError

_DURATION = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(ms|s|m)$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0}


@dataclass(frozen=True, slots=True)
class StoreTls:
    """``drills.tls``: how the guards' client checks an https ``queryUrl`` and, for a store
    that requires mutual TLS, proves itself (Prometheus's ``tls_config``, in this file's
    spelling). Relative paths are relative to the config file's directory."""

    ca_file: Path | None = None
    """``caFile``: CA bundle (PEM) the store's certificate must chain to; unset: the system's."""
    cert_file: Path | None = None
    """``certFile``: client certificate (PEM) presented to the store; needs ``keyFile``."""
    key_file: Path | None = None
    """``keyFile``: the private key (PEM) of ``certFile``."""

    @property
    def configured(self) -> bool:
        return any(p is not None for p in (self.ca_file, self.cert_file, self.key_file))

    def validate(self, query_url: str) -> None:
        if not self.configured:
            return
        if not query_url.startswith("https://"):
            raise ConfigError(
                f'drills.tls is set but drills.queryUrl "{query_url}" is not https: '
                "serve the store's API with TLS or drop drills.tls"
            )
        if (self.cert_file is None) != (self.key_file is None):
            raise ConfigError("drills.tls.certFile and drills.tls.keyFile go together: set both")
        for key, path in (("caFile", self.ca_file), ("certFile", self.cert_file),
                          ("keyFile", self.key_file)):  # fmt: skip
            if path is not None and not path.is_file():
                raise ConfigError(f'drills.tls.{key} "{path}" is not a readable file')


@dataclass(frozen=True, slots=True)
class DrillSettings:
    """Drills run by the leader: ``Drill`` objects in ``namespace`` of the home cluster."""

    enabled: bool = False
    """Watch and run ``Drill`` objects (needs the home cluster and the CRD installed)."""
    query_url: str = ""
    """Base URL of the store's Prometheus-compatible API (``{queryUrl}/api/v1/query``); empty:
    every guard evaluates as unknown (``holds`` unset), so only the TTL bounds a drill."""
    token_file: Path | None = None
    """Bearer token sent to ``queryUrl`` (read at each query, so a rotated token is used)."""
    namespace: str = ""
    """Namespace of the Drill objects and of the freeze ConfigMap; empty: the federator's."""
    workers: int = 4
    """Drills driven at the same time; more Drill objects wait for a free worker."""
    poll_interval_seconds: float = 1.0
    """How often Drill objects and the freeze are re-read (level-based: a missed change is
    seen at the next read)."""
    query_timeout_seconds: float = 5.0
    """Timeout of one guard query; a slower store counts as unreachable for that evaluation."""
    transient_retry_seconds: float = 30.0
    """How long a drill action that keeps failing with a retryable error (an apiserver
    restarting, a 429/503, a dropped connection) is tried again before the run ends with
    ``Exit(Error)`` and rolls back; 0 ends it at the first failure. Guards, halt, freeze and
    the TTL still apply meanwhile."""
    tls: StoreTls = StoreTls()
    """The store's CA and this federator's client certificate (``drills.tls``)."""

    def validate(self) -> None:
        if not self.enabled:
            return
        if self.query_url:
            url = urlparse(self.query_url)
            if url.scheme not in ("http", "https") or not url.netloc:
                raise ConfigError(
                    f'drills.queryUrl "{self.query_url}" is not an http(s) URL: write it like '
                    '"http://meshfed-collector:9464"'
                )
        self.tls.validate(self.query_url)
        if self.token_file is not None and not self.token_file.is_file():
            raise ConfigError(f'drills.tokenFile "{self.token_file}" is not a readable file')
        if self.namespace:
            check_dns_label("drills.namespace", self.namespace)
        if not 1 <= self.workers <= 64:
            raise ConfigError("drills.workers must be between 1 and 64")
        if not 0.1 <= self.poll_interval_seconds <= 60:
            raise ConfigError("drills.pollInterval must be between 100ms and 60s")
        if not 0.1 <= self.query_timeout_seconds <= 60:
            raise ConfigError("drills.queryTimeout must be between 100ms and 60s")
        if not 0 <= self.transient_retry_seconds <= 600:
            raise ConfigError("drills.transientRetry must be between 0s and 10m")


def _seconds(f: Fields, key: str, default: float) -> float:
    value = f.get(key)
    if value is None:
        return default
    match = _DURATION.match(str(value))
    if not match:
        raise ConfigError(f'{f.path(key)} "{value}" is not a duration: write it like "1s", "500ms"')
    return float(match.group(1)) * _UNIT[match.group(2)]


def parse_drills(value: Any, *, base_dir: Path) -> DrillSettings:
    """The ``drills:`` mapping (not yet validated); defaults when absent."""
    d = DrillSettings()
    if value is None:
        return d
    f = Fields(value, "drills")
    enabled = f.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        raise ConfigError(f"drills.enabled must be true or false, got {enabled!r}")
    token = f.opt_str("tokenFile")
    token_file = None if not token else _path(token, base_dir)
    tls = StoreTls()
    if (raw_tls := f.get("tls")) is not None:
        t = Fields(raw_tls, "drills.tls")
        files = {key: t.opt_str(key) for key in ("caFile", "certFile", "keyFile")}
        t.finish()
        tls = StoreTls(*(None if v is None else _path(v, base_dir) for v in files.values()))
    out = DrillSettings(
        enabled=d.enabled if enabled is None else enabled,
        query_url=f.str_("queryUrl", d.query_url).rstrip("/"),
        token_file=token_file,
        namespace=f.str_("namespace", d.namespace),
        workers=f.int_("workers", d.workers),
        poll_interval_seconds=_seconds(f, "pollInterval", d.poll_interval_seconds),
        query_timeout_seconds=_seconds(f, "queryTimeout", d.query_timeout_seconds),
        transient_retry_seconds=_seconds(f, "transientRetry", d.transient_retry_seconds),
        tls=tls,
    )
    f.finish()
    return out


def _path(text: str, base_dir: Path) -> Path:
    return Path(text) if Path(text).is_absolute() else base_dir / text

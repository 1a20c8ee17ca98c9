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
    token_file = None
    if token:
        token_file = Path(token) if Path(token).is_absolute() else base_dir / token
    out = DrillSettings(
        enabled=d.enabled if enabled is None else enabled,
        query_url=f.str_("queryUrl", d.query_url).rstrip("/"),
        token_file=token_file,
        namespace=f.str_("namespace", d.namespace),
        workers=f.int_("workers", d.workers),
        poll_interval_seconds=_seconds(f, "pollInterval", d.poll_interval_seconds),
        query_timeout_seconds=_seconds(f, "queryTimeout", d.query_timeout_seconds),
    )
    f.finish()
    return out

"""Settings of the Prometheus receivers: remote_write (push) and federation (pull).

Frozen, documented, validated at start-up; ``validate()`` names the field and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from collectors._core.errors import ConfigError

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class RemoteWriteSettings:
    """``POST /api/v1/write`` on the collector's HTTP listener (remote_write 1.0)."""

    enabled: bool = True
    """Serve the remote_write receiver."""
    max_body_bytes: int = 8 * MIB
    """Compressed request bodies larger than this are refused with 413."""
    max_decompressed_bytes: int = 16 * MIB
    """A snappy block declaring more than this is refused with 413 before decompressing."""
    bearer_token: str = ""
    """When set (or ``bearer_token_file``), requests need ``Authorization: Bearer <token>``."""
    bearer_token_file: Path | None = None
    """A file holding the token (read at start-up; surrounding whitespace is ignored)."""

    def validate(self) -> None:
        if self.max_body_bytes <= 0:
            raise ConfigError("remote_write.max_body_bytes must be > 0")
        if not 0 < self.max_decompressed_bytes <= 256 * MIB:
            raise ConfigError("remote_write.max_decompressed_bytes must be within 1..268435456")
        if self.bearer_token and self.bearer_token_file is not None:
            raise ConfigError(
                "set remote_write.bearer_token or remote_write.bearer_token_file, not both"
            )
        if self.bearer_token_file is not None and not self.bearer_token_file.is_file():
            raise ConfigError(
                f"remote_write.bearer_token_file {str(self.bearer_token_file)!r} is not a"
                " readable file; create it or fix the path"
            )

    def token(self) -> str:
        """The configured bearer token ('' = no authentication)."""
        if self.bearer_token_file is not None:
            token = self.bearer_token_file.read_text(encoding="utf-8").strip()
            if not token:
                raise ConfigError(
                    f"remote_write.bearer_token_file {self.bearer_token_file} is empty"
                )
            return token
        return self.bearer_token


@dataclass(frozen=True, slots=True)
class PullTarget:
    """One cluster's Prometheus whose series are federated into the store."""

    cluster: str
    """Value of the ``cluster`` label added to every pulled series (unless present)."""
    url: str
    """Base URL of that Prometheus, e.g. ``http://prometheus.c1:9090``."""
    selectors: tuple[str, ...] = ('{__name__=~".+"}',)
    """Series selectors sent as ``match[]`` to ``/federate``."""
    interval_s: float = 15.0
    """Time between two pulls."""
    timeout_s: float = 10.0
    """Time allowed for one pull."""
    bearer_token: str = ""
    """Sent as ``Authorization: Bearer`` when set."""
    max_response_bytes: int = 64 * MIB
    """Larger federation responses are abandoned (and counted)."""

    def validate(self, where: str) -> None:
        if not self.cluster:
            raise ConfigError(f"{where}.cluster must name the cluster (e.g. cluster: c1)")
        if not self.url.startswith(("http://", "https://")):
            raise ConfigError(f"{where}.url must start with http:// or https://; got {self.url!r}")
        if not self.selectors or not all(s.strip() for s in self.selectors):
            raise ConfigError(f'{where}.selectors must list selectors, e.g. ["{{job=\\"x\\"}}"]')
        if self.interval_s < 1:
            raise ConfigError(f"{where}.interval_s must be >= 1")
        if not 0 < self.timeout_s <= self.interval_s:
            raise ConfigError(f"{where}.timeout_s must be > 0 and <= interval_s")
        if self.max_response_bytes <= 0:
            raise ConfigError(f"{where}.max_response_bytes must be > 0")


@dataclass(frozen=True, slots=True)
class PullSettings:
    """Pull mode: periodically federate selected series from each cluster's Prometheus."""

    targets: tuple[PullTarget, ...] = field(default_factory=tuple)
    """The Prometheus servers to pull from; empty disables pull mode."""

    def validate(self) -> None:
        seen: set[str] = set()
        for i, target in enumerate(self.targets):
            target.validate(f"pull.targets[{i}]")
            if target.url in seen:
                raise ConfigError(f"pull.targets[{i}].url {target.url!r} is listed twice")
            seen.add(target.url)

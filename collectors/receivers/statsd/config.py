"""Settings of the StatsD receiver (the ``statsd:`` section), validated before any socket.

Defaults follow the reference daemon (npm ``statsd`` 0.9): 10 s flush, percentile 90, idle
stats kept (counters/timers/sets re-sent as zeros, gauges re-sent). Every bound that decides
memory is here: distinct keys and raw values per interval, events, TCP line length. Flushes
are not queued here (the pipeline's bounded queue is the only place they wait) and nothing is
retried, so neither has a setting. ``validate()`` raises
:class:`collectors._core.errors.ConfigError` naming the field and the fix; ``from_mapping``
reads the YAML mapping (a field it does not know, such as a removed one, is a
``ConfigError`` naming it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from collectors._core.errors import ConfigError
from collectors._core.net import parse_host_port
from collectors._core.settings import build
from collectors.receivers.statsd.aggregate import AggregatorSettings

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class StatsdSettings:
    """The StatsD receiver's settings."""

    udp_listen: str | None = "127.0.0.1:8125"
    """UDP address (``None`` turns UDP off). Port 0 picks a free port."""
    tcp_listen: str | None = "127.0.0.1:8125"
    """TCP address, newline framed (``None`` turns TCP off). Port 0 picks a free port."""
    flush_interval_s: float = 10.0
    """Aggregation interval (the reference's ``flushInterval``). Flushes happen at multiples
    of it since the Unix epoch, so every collector flushes at the same instants."""
    percentiles: tuple[float, ...] = (90.0,)
    """Timer percentiles (the reference's ``percentThreshold``); negative = top values."""
    udp_workers: int = 2
    """Processes reading the UDP socket (one shared socket; each parses and pre-aggregates,
    the main process merges at flush). 0 reads UDP in the main process's event loop."""
    receive_buffer_bytes: int = 8 * MIB
    """Requested ``SO_RCVBUF`` (``SO_RCVBUFFORCE`` when permitted, else capped by
    ``net.core.rmem_max``); the granted size is logged and exposed as ``receive_buffer``."""
    max_datagram_bytes: int = 65_535
    """Largest datagram read; longer ones are truncated by the kernel (lines cut = bad)."""
    max_keys: int = 100_000
    """Distinct metric keys per interval and process, and per type in the kept state; more
    are dropped and counted (``dropped{reason="memory_limit"}``)."""
    max_values: int = 2_000_000
    """Raw values (timer values, set members, gauge deltas) per interval and process; more
    are dropped and counted. About 60 bytes each, so the default bounds ~120 MiB/process."""
    max_events: int = 10_000
    """DogStatsD events and service checks per interval and process; more are dropped."""
    max_tcp_connections: int = 256
    """Concurrent TCP connections; more are closed at once (``rejected{reason=
    "too_many_connections"}``)."""
    max_tcp_line_bytes: int = 65_536
    """Longest TCP line; a connection sending a longer one is closed (``too_large``)."""
    delete_idle_stats: bool = False
    """Default of the four ``delete_*`` settings (the reference's ``deleteIdleStats``)."""
    delete_counters: bool | None = None
    """Drop counters that got nothing this interval instead of sending zeros."""
    delete_timers: bool | None = None
    """Drop idle timers instead of sending ``count 0`` / ``count_ps 0``."""
    delete_sets: bool | None = None
    """Drop idle sets instead of sending ``count 0``."""
    delete_gauges: bool | None = None
    """Drop gauges idle for ``gauges_max_ttl`` flushes instead of re-sending them."""
    gauges_max_ttl: int = 1
    """Flushes an idle gauge survives with ``delete_gauges`` (the reference's gaugesMaxTTL)."""
    prefix_stats: str = "statsd"
    """Prefix of the receiver's own counters (``statsd.bad_lines_seen``, ``.packets_received``,
    ``.metrics_received``), flushed like any counter."""
    max_batch_samples: int = 10_000
    """Samples per write to the pipeline; a flush is handed over in several batches, one
    after the other (keep it below ``pipeline.batch.max_queued_samples``). A batch the
    pipeline refuses is dropped and counted, not retried."""
    shutdown_grace_s: float = 10.0
    """On shutdown, time allowed for the final flush (and any other still being handed
    over) to reach the pipeline; what is left is counted (``dropped{reason="shutdown"}``)."""

    @property
    def udp_address(self) -> tuple[str, int] | None:
        """``udp_listen`` parsed (``None``: UDP is off)."""
        if self.udp_listen is None:
            return None
        return parse_host_port(self.udp_listen, field="statsd.udp_listen")

    @property
    def tcp_address(self) -> tuple[str, int] | None:
        """``tcp_listen`` parsed (``None``: TCP is off)."""
        if self.tcp_listen is None:
            return None
        return parse_host_port(self.tcp_listen, field="statsd.tcp_listen")

    @property
    def interval_ms(self) -> int:
        return round(self.flush_interval_s * 1000)

    def aggregator(self) -> AggregatorSettings:
        """The flush's view of these settings (``delete_*`` resolved)."""

        def pick(value: bool | None) -> bool:
            return self.delete_idle_stats if value is None else value

        return AggregatorSettings(
            interval_ms=self.interval_ms,
            percentiles=self.percentiles,
            delete_counters=pick(self.delete_counters),
            delete_timers=pick(self.delete_timers),
            delete_sets=pick(self.delete_sets),
            delete_gauges=pick(self.delete_gauges),
            gauges_max_ttl=self.gauges_max_ttl,
            prefix_stats=self.prefix_stats,
            max_keys=self.max_keys,
        )

    def validate(self) -> None:
        """Raise ``ConfigError`` for the first invalid field, naming it and the fix."""
        if self.udp_listen is None and self.tcp_listen is None:
            raise ConfigError("statsd: set udp_listen or tcp_listen (both are null)")
        self.udp_address  # noqa: B018 - parses and raises ConfigError
        self.tcp_address  # noqa: B018
        if not 0.1 <= self.flush_interval_s <= 3600 or self.interval_ms < 100:
            raise ConfigError(
                f"statsd.flush_interval_s must be in 0.1..3600; got {self.flush_interval_s}"
            )
        if not self.percentiles:
            raise ConfigError("statsd.percentiles must list at least one percentile, e.g. [90]")
        for pct in self.percentiles:
            if not 0 < abs(pct) <= 100:
                raise ConfigError(f"statsd.percentiles must be in -100..100 without 0; got {pct}")
        bounds = {
            "udp_workers": (0, 64),
            "receive_buffer_bytes": (4096, 1024 * MIB),
            "max_datagram_bytes": (512, 65_535),
            "max_keys": (10, 100_000_000),
            "max_values": (100, 1_000_000_000),
            "max_events": (0, 10_000_000),
            "max_tcp_connections": (1, 65_536),
            "max_tcp_line_bytes": (512, 64 * MIB),
            "gauges_max_ttl": (1, 1_000_000),
            "max_batch_samples": (1, 200_000),
        }
        for name, (low, high) in bounds.items():
            value = getattr(self, name)
            if not low <= value <= high:
                raise ConfigError(f"statsd.{name} must be in {low}..{high}; got {value}")
        if not self.prefix_stats:
            raise ConfigError("statsd.prefix_stats must not be empty (the reference uses 'statsd')")
        if self.shutdown_grace_s <= 0:
            raise ConfigError(
                f"statsd.shutdown_grace_s must be > 0 (seconds); got {self.shutdown_grace_s}"
            )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> StatsdSettings:
        """Settings from the YAML ``statsd:`` mapping; unknown keys are a ``ConfigError``."""
        return build(cls, data, "statsd")

"""Settings of the trace and log stores: retention, index granularity and every read bound.

Grouped, frozen and validated at start-up (``validate()`` raises ``ConfigError`` naming the
field and the fix) so that a bad value fails the process before it serves anything.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from collectors._core.errors import ConfigError


def _positive(obj: object, group: str) -> None:
    for f in fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, f.name)
        if isinstance(value, int) and not isinstance(value, bool) and value <= 0:
            raise ConfigError(f"{group}.{f.name} must be > 0 (got {value}); set a positive value")


@dataclass(frozen=True, slots=True)
class TraceSettings:
    """How spans are kept in Redis and how much one query may read."""

    retention_s: int = 72 * 3600
    """Spans and indexes expire this long after their last write (key TTLs)."""
    index_bucket_s: int = 3600
    """Width of the search-index time buckets; one index key per (service, bucket)."""
    max_spans_per_trace: int = 10_000
    """A trace read returns at most this many spans and says ``truncated`` beyond."""
    max_batches_per_trace: int = 2_000
    """A trace read fetches at most this many stored write batches of that trace."""
    search_default_limit: int = 20
    """Traces returned by a search without ``limit`` (Tempo's default)."""
    search_max_limit: int = 1_000
    """Largest ``limit`` a search accepts."""
    search_max_inspected_traces: int = 2_000
    """A search reads at most this many candidate traces; beyond, it says ``truncated``."""
    search_max_batches_per_trace: int = 50
    """A search reads at most this many stored batches of each candidate trace."""
    search_default_window_s: int = 3600
    """A search without ``start`` looks this far back from ``end`` (or now)."""
    tag_value_max_length: int = 64
    """Attribute values longer than this are not recorded for ``/api/search/tag/<t>/values``."""
    max_tag_values: int = 200
    """Distinct values per (tag, bucket) a writer records; reads return at most this many."""
    client_cache_entries: int = 100_000
    """Size of the writer's memory of index entries already written (cleared when full)."""

    def validate(self) -> None:
        _positive(self, "traces")
        if self.index_bucket_s > self.retention_s:
            raise ConfigError(
                "traces.index_bucket_s must be <= traces.retention_s; lower the bucket width"
            )
        if self.search_default_limit > self.search_max_limit:
            raise ConfigError(
                "traces.search_default_limit must be <= traces.search_max_limit; lower it"
            )
        if self.retention_s // self.index_bucket_s > 10_000:
            raise ConfigError(
                "traces.retention_s / traces.index_bucket_s must be <= 10000 buckets;"
                " widen index_bucket_s"
            )


@dataclass(frozen=True, slots=True)
class LogSettings:
    """How log records are kept in Redis Streams and how much one query may read."""

    retention_s: int = 72 * 3600
    """Stream entries older than this are trimmed (XADD MINID); idle streams expire."""
    max_future_skew_s: int = 300
    """A record dated further in the future gets a stream id of now + this (its time is kept)."""
    late_arrival_window_s: int = 300
    """Records arriving this late still fall in time-range reads; later ones are kept but
    found only by windows that reach their arrival time (their stream id)."""
    query_default_limit: int = 100
    """Log lines returned without ``limit``."""
    query_max_limit: int = 5_000
    """Largest ``limit`` a log query accepts."""
    max_scanned_entries: int = 50_000
    """A query decodes at most this many records (of the stream entries it reads) in total;
    beyond, it says ``truncated``. (Named before entries held many records.)"""
    max_streams_per_query: int = 200
    """A query reads at most this many (cluster, tag) streams; beyond, it says ``truncated``."""
    max_logs_per_trace: int = 1_000
    """Correlated log references kept per trace (older references are dropped)."""
    registry_refresh_s: int = 3600
    """A writer re-touches a stream's registry entry at most once per this period."""
    write_chunk: int = 500
    """At most this many records share one stream entry (one msgpack blob, one XADD)."""
    entry_span_ms: int = 10_000
    """Records of one stream entry are at most this far apart in time (the entry id is the
    earliest); time-range reads start this much earlier to find them."""
    client_cache_entries: int = 100_000
    """Size of the writer's memory of registered streams (cleared when full)."""

    def validate(self) -> None:
        _positive(self, "logs")
        if self.query_default_limit > self.query_max_limit:
            raise ConfigError("logs.query_default_limit must be <= logs.query_max_limit; lower it")
        if self.registry_refresh_s >= self.retention_s:
            raise ConfigError(
                "logs.registry_refresh_s must be < logs.retention_s; lower the refresh period"
            )

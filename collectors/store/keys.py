"""The whole Redis key schema in one place.

Every key the store reads or writes is built here, so the layout (and its Redis Cluster hash
tags, which decide which keys share a slot) can be reviewed in one file. See
docs/adr/0002-store-metrics-layout.md for the metrics half and
docs/adr/0003-store-traces-logs-layout.md for the traces and logs half.
"""

from __future__ import annotations

# --- metrics ---
# Series are spread over ``shards`` (settings.chunks.shards) by their id. Every key of one
# shard carries the hash tag ``{m<shard>}``: the series table, the label index, heads and
# chunks of a shard live in one slot, so one Lua call per shard writes a whole batch and
# multi-key set operations on the index are legal on Redis Cluster. Lua scripts get the
# ``*_prefix`` strings below as arguments and only append a series id, label name or value.

METRICS_PREFIX = "mf:m:"
"""Prefix of every metrics key."""
POSTING_SEPARATOR = "\x00"
"""Between label name and value in a posting key (label names never contain NUL)."""


def shard_tag(shard: int) -> str:
    """``mf:m:{m<shard>}:`` — the start of every key of one shard."""
    return f"{METRICS_PREFIX}{{m{shard}}}:"


def series_labels_key(shard: int) -> str:
    """HASH series id -> canonical labels (JSON ``[name, value, ...]`` sorted by name)."""
    return shard_tag(shard) + "series"


def series_all_key(shard: int) -> str:
    """SET of the ids of every series of the shard (the ``all series`` posting)."""
    return shard_tag(shard) + "all"


def series_last_key(shard: int) -> str:
    """HASH series id -> its newest raw sample as a 16-byte head record (order checks),
    then its head's first timestamp (8 bytes). Once ``series_last_lags_key`` exists, an
    entry may lag a non-empty head: the head's last record is the series' last."""
    return shard_tag(shard) + "last"


def series_last_lags_key(shard: int) -> str:
    """STRING, set by the write module when it leaves a ``last`` entry behind its head
    (docs/adr/0018-redis-write-module.md): readers then take a non-empty head's tail."""
    return shard_tag(shard) + "last_lags"


def series_first_key(shard: int) -> str:
    """HASH series id -> timestamp (ms) of its oldest retained sample (series API bounds)."""
    return shard_tag(shard) + "first"


def tenant_series_key(shard: int) -> str:
    """HASH tenant (value of the tenant label) -> number of series of that tenant."""
    return shard_tag(shard) + "tenants"


def metrics_stats_key(shard: int) -> str:
    """HASH counter name -> count (``series_over_limit``, ``samples_over_limit``...)."""
    return shard_tag(shard) + "stats"


def label_names_key(shard: int) -> str:
    """SET of label names used by the shard's series."""
    return shard_tag(shard) + "names"


def label_values_prefix(shard: int) -> str:
    """Prefix of the SET of values of one label name (append the name)."""
    return shard_tag(shard) + "v:"


def label_values_key(shard: int, name: str) -> str:
    """SET of the values label ``name`` takes in the shard (regex matchers scan this)."""
    return label_values_prefix(shard) + name


def postings_prefix(shard: int) -> str:
    """Prefix of a posting SET (append ``name NUL value``)."""
    return shard_tag(shard) + "p:"


def postings_key(shard: int, name: str, value: str) -> str:
    """SET of ids of the shard's series having label ``name`` = ``value``."""
    return postings_prefix(shard) + name + POSTING_SEPARATOR + value


def head_prefix(shard: int) -> str:
    """Prefix of a series head (append the series id)."""
    return shard_tag(shard) + "h:"


def head_key(shard: int, series_id: str) -> str:
    """STRING of 16-byte records: the newest raw samples, not yet cut into a chunk."""
    return head_prefix(shard) + series_id


def chunks_key(shard: int, tier: str, series_id: str) -> str:
    """ZSET of compressed chunks of one series in one tier, scored by first timestamp."""
    return f"{shard_tag(shard)}c:{tier}:{series_id}"


def watermark_key(shard: int, tier: str) -> str:
    """HASH series id -> end (ms, exclusive) of the raw data already downsampled to ``tier``."""
    return f"{shard_tag(shard)}wm:{tier}"


def tier_floors_key() -> str:
    """HASH tier name -> time (ms) before which ``compact`` last trimmed that tier."""
    return METRICS_PREFIX + "floors"


def metadata_key() -> str:
    """HASH metric family name -> JSON ``{"type", "help", "unit"}`` (one slot, small)."""
    return METRICS_PREFIX + "meta"


# --- traces and logs ---
# All keys of one trace share the hash tag ``{<trace id>}``: one trace is one slot, so
# reading a trace by id is one command on one node. Search indexes are per (service, time
# bucket) and per bucket, so concurrent writes spread over many slots (no global hot key).

TRACE_PREFIX = "mf:t:"
"""Prefix of every traces-and-logs key (``mf:t:`` traces, ``mf:l:`` logs)."""
LOG_PREFIX = "mf:l:"


def trace_spans_key(trace_id: str) -> str:
    """LIST of encoded span batches (OTLP ``TracesData`` protobuf) of one trace."""
    return f"{TRACE_PREFIX}{{{trace_id}}}:spans"


def trace_logs_key(trace_id: str) -> str:
    """LIST of references ``<stream key>\\n<entry id>\\n<index in entry>`` to the trace's
    log records (references without an index, from the one-record-per-entry layout, mean
    every record of the entry with this trace id)."""
    return f"{TRACE_PREFIX}{{{trace_id}}}:logs"


def trace_search_key(service: str, bucket: int) -> str:
    """ZSET trace id -> earliest start (ms) of the service's spans in that time bucket."""
    return f"{TRACE_PREFIX}ix:{{{service}|{bucket}}}"


def trace_operations_key(service: str, bucket: int) -> str:
    """SET of span names (operations) of one service seen in one time bucket."""
    return f"{TRACE_PREFIX}ops:{{{service}|{bucket}}}"


def trace_services_key(bucket: int) -> str:
    """SET of service names seen in one time bucket."""
    return f"{TRACE_PREFIX}svc:{{{bucket}}}"


def trace_tag_names_key(bucket: int) -> str:
    """SET of attribute (tag) names seen in one time bucket."""
    return f"{TRACE_PREFIX}tags:{{{bucket}}}"


def trace_tag_values_key(tag: str, bucket: int) -> str:
    """SET of (short) values of one attribute seen in one time bucket."""
    return f"{TRACE_PREFIX}tagv:{{{tag}|{bucket}}}"


def log_stream_key(cluster: str, tag: str) -> str:
    """STREAM of the log records of one (cluster, tag): each entry (field ``b``) is a msgpack
    batch of records (collectors/store/log_codec.py); its id is its earliest record's time."""
    return f"{LOG_PREFIX}s:{{{cluster}|{tag}}}"


def log_registry_key() -> str:
    """ZSET ``<json [cluster, tag]>`` -> last time (ms) a writer touched that stream.

    Written only when a writer first sees a stream and then at most once per refresh period
    (writers cache it), so it is not a per-write hot key.
    """
    return f"{LOG_PREFIX}registry"

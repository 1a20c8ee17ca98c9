"""The log store: one Redis Stream per (cluster, tag), many records per entry, trimmed by age.

A write groups each stream's records into entries of at most ``write_chunk`` records spanning
at most ``entry_span_ms`` (one compact msgpack blob each, see ``log_codec``) and appends them
with one server-side script call per stream: entry ids are ``<earliest record ms>-<seq>``
(ids only grow: a late entry takes the stream's last id time with the next sequence; a future
one is clamped to now + skew), ``MINID`` trims by age and the key's TTL is refreshed. So a
time-range read is an XREVRANGE over ids widened by the entry span. Records with a trace id
are referenced as (stream, entry id, index in entry) from the trace's own key (``{trace id}``
hash tag). The set of streams lives in a registry ZSET that each writer touches only when it
first sees a stream and then once per refresh period. See docs/adr/0003.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis.exceptions as rexc

from collectors._core.log_batch import LogBatch, LogColumns
from collectors._core.model import CLUSTER_LABEL, LogRecord, TraceId
from collectors.store import keys
from collectors.store.connection import RedisClient, unavailable_on_redis_errors
from collectors.store.log_codec import (
    EncodedEntry,
    RowFilter,
    decode_entry,
    encode_stream,
)
from collectors.store.trace_logs_settings import LogSettings

log = logging.getLogger(__name__)

_NS_PER_MS = 1_000_000
_FIRST_PAGE = 16
_MAX_PAGE = 256

# KEYS[1] stream; ARGV: minid ms, max id ms, ttl s, then (entry ms, payload) pairs. Returns
# the ids given, in order. The first append tries ``<ms>-0``; only if the stream already has
# a larger id (same millisecond, or a late entry) is the last id read (XINFO), once per call.
APPEND_LUA = """
local key = KEYS[1]
local cap = tonumber(ARGV[2])
local last_ms, last_seq = 0, 0
local known = false
local ids = {}
for i = 4, #ARGV, 2 do
  local ms = tonumber(ARGV[i])
  if ms > cap then ms = cap end
  if ms < 1 then ms = 1 end
  local id = nil
  if not known then
    known = true
    local try = string.format('%.0f-0', ms)
    local reply = redis.pcall('XADD', key, 'MINID', '~', ARGV[1], try, 'b', ARGV[i + 1])
    if type(reply) == 'table' and reply.err then
      local info = redis.call('XINFO', 'STREAM', key)
      for j = 1, #info, 2 do
        if info[j] == 'last-generated-id' then
          local a, b = string.match(info[j + 1], '(%d+)-(%d+)')
          last_ms = tonumber(a)
          last_seq = tonumber(b)
        end
      end
    else
      id = try
      last_ms, last_seq = ms, 0
    end
  end
  if id == nil then
    local seq = 0
    if ms <= last_ms then
      ms = last_ms
      seq = last_seq + 1
    end
    id = string.format('%.0f-%.0f', ms, seq)
    redis.call('XADD', key, 'MINID', '~', ARGV[1], id, 'b', ARGV[i + 1])
    last_ms, last_seq = ms, seq
  end
  ids[#ids + 1] = id
end
redis.call('EXPIRE', key, ARGV[3])
return ids
"""
_APPEND_SHA = hashlib.sha1(APPEND_LUA.encode(), usedforsecurity=False).hexdigest()


@dataclass(frozen=True, slots=True)
class LogQuery:
    """A log read. Times are unix nanoseconds; ``None`` filters are not applied."""

    start_unix_nano: int
    end_unix_nano: int
    limit: int
    cluster: str | None = None
    tag: str | None = None
    min_severity: int | None = None
    contains: str | None = None
    trace_id: TraceId | None = None

    def row_filter(self) -> RowFilter:
        return RowFilter(
            self.start_unix_nano,
            self.end_unix_nano,
            self.min_severity,
            self.contains,
            self.trace_id,
        )


@dataclass(frozen=True, slots=True)
class LogResult:
    """Matching records, newest first; ``truncated`` if more may match than returned."""

    records: tuple[LogRecord, ...]
    truncated: bool


# One stream's append: key, its encoded entries (in order), script arguments.
_Append = tuple[str, list[EncodedEntry], list[Any]]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _entry_ms(entry_id: Any) -> int:
    return int(_text(entry_id).partition("-")[0])


def _newest_first(records: list[LogRecord]) -> list[LogRecord]:
    return sorted(records, key=lambda r: r.time_unix_nano, reverse=True)


class _Registered:
    """A bounded memory of registry entries written successfully (cleared when full)."""

    def __init__(self, max_entries: int) -> None:
        self._max = max_entries
        self._seen: set[str] = set()

    def __contains__(self, entry: str) -> bool:
        return entry in self._seen

    def add(self, entry: str) -> None:
        if len(self._seen) >= self._max:
            self._seen.clear()
        self._seen.add(entry)


class LogStore:
    """Writes log records to per-(cluster, tag) streams and answers filtered reads."""

    def __init__(
        self,
        *,
        redis: RedisClient,
        settings: LogSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        settings.validate()
        self._redis: Any = redis  # see RedisClient: the stubs miss cluster commands
        self._settings = settings
        self._clock = clock
        self._registered = _Registered(settings.client_cache_entries)
        self.expired_dropped = 0
        """Records refused because they were older than the retention (counted, not logged)."""

    @property
    def settings(self) -> LogSettings:
        return self._settings

    async def write_logs(self, records: Sequence[LogRecord]) -> None:
        """Append ``records``; returns only after Redis acknowledged them and their trace links.

        Raises ``StoreUnavailableError`` (retryable) when Redis is unreachable or refuses,
        ``PermanentError`` when a record cannot be encoded (bad trace or span id).
        Works on columns (a ``LogBatch``; other sequences are converted): records are grouped
        per stream a part at a time, since a part shares its tag and resource (so cluster).
        """
        s = self._settings
        now_ms = int(self._clock() * 1000)
        min_ms = now_ms - s.retention_s * 1000
        min_ns = min_ms * _NS_PER_MS
        streams: dict[tuple[str, str], list[LogColumns]] = defaultdict(list)
        for part in LogBatch.of(records).parts:
            if min(part.times) < min_ns:
                keep = [t >= min_ns for t in part.times]
                self.expired_dropped += keep.count(False)
                part = part.select(keep)  # noqa: PLW2901 -- the part without expired rows
                if not len(part):
                    continue
            cluster = part.resource.get(CLUSTER_LABEL)
            streams[(cluster if isinstance(cluster, str) else "", part.tag)].append(part)
        if not streams:
            return
        cap = now_ms + s.max_future_skew_s * 1000
        appends: list[_Append] = []
        for (cluster, tag), parts in streams.items():
            args: list[Any] = [min_ms, cap, s.retention_s]
            entries = encode_stream(tag, parts, s.write_chunk, s.entry_span_ms * _NS_PER_MS)
            for entry in entries:
                args += (entry.base_unix_nano // _NS_PER_MS, entry.blob)
            appends.append((keys.log_stream_key(cluster, tag), entries, args))
        period = now_ms // (s.registry_refresh_s * 1000)
        pending = {
            json.dumps([cluster, tag]): f"{cluster}\n{tag}\n{period}"
            for cluster, tag in streams
            if f"{cluster}\n{tag}\n{period}" not in self._registered
        }
        with unavailable_on_redis_errors(f"writing {len(records)} log records"):
            ids = await self._append(appends, pending, now_ms)
        for mark in pending.values():  # only now: a failed write must register again
            self._registered.add(mark)
        await self._link_traces(appends, ids)

    async def _append(
        self, appends: list[_Append], pending: dict[str, str], now_ms: int
    ) -> list[Any]:
        """Run the append script per stream (and the registry update) in one pipeline."""
        s = self._settings
        pipe = self._redis.pipeline(transaction=False)
        for key, _, args in appends:
            pipe.execute_command("EVALSHA", _APPEND_SHA, 1, key, *args)
        if pending:
            registry = keys.log_registry_key()
            pipe.zadd(registry, dict.fromkeys(pending, now_ms))
            stale = now_ms - (s.retention_s + s.registry_refresh_s) * 1000
            pipe.zremrangebyscore(registry, "-inf", stale)
        results: list[Any] = list(await pipe.execute(raise_on_error=False))
        missing = [i for i, r in enumerate(results) if isinstance(r, rexc.NoScriptError)]
        if missing:  # a restarted (or new cluster) node: send the script text once
            pipe = self._redis.pipeline(transaction=False)
            for i in missing:
                key, _, args = appends[i]
                pipe.execute_command("EVAL", APPEND_LUA, 1, key, *args)
            for i, value in zip(missing, await pipe.execute(raise_on_error=False), strict=True):
                results[i] = value
        for value in results:
            if isinstance(value, Exception):
                raise value
        return results[: len(appends)]

    async def _link_traces(self, appends: list[_Append], ids: list[Any]) -> None:
        s = self._settings
        refs: dict[str, list[str]] = defaultdict(list)
        for (key, entries, _), entry_ids in zip(appends, ids, strict=True):
            for entry, entry_id in zip(entries, entry_ids, strict=True):
                for index, traced in entry.traced:
                    refs[traced].append(f"{key}\n{_text(entry_id)}\n{index}")
        if not refs:
            return
        pipe = self._redis.pipeline(transaction=False)
        for trace_id, items in refs.items():
            key = keys.trace_logs_key(trace_id)
            pipe.rpush(key, *items)
            pipe.ltrim(key, -s.max_logs_per_trace, -1)
            pipe.expire(key, s.retention_s)
        with unavailable_on_redis_errors("linking log records to traces"):
            await pipe.execute()

    async def query(self, query: LogQuery) -> LogResult:
        """Records matching ``query``, newest first, at most ``query.limit``."""
        if query.trace_id is not None:
            return await self._by_trace(query)
        s = self._settings
        streams, cut_streams = await self._streams(query)
        if not streams:
            return LogResult(records=(), truncated=cut_streams)
        span_ms = s.entry_span_ms
        hi = query.end_unix_nano // _NS_PER_MS + s.late_arrival_window_s * 1000
        lo = max(0, query.start_unix_nano // _NS_PER_MS - s.max_future_skew_s * 1000 - span_ms)
        flt = query.row_filter()
        cursors: dict[str, str] = {key: str(hi) for key in streams}
        found: dict[str, list[LogRecord]] = {key: [] for key in streams}
        page = _FIRST_PAGE
        scanned = 0
        more = False
        while cursors and scanned < s.max_scanned_entries:
            pipe = self._redis.pipeline(transaction=False)
            active = list(cursors)
            for key in active:
                pipe.xrevrange(key, cursors[key], str(lo), count=page)
            with unavailable_on_redis_errors("reading logs"):
                replies = await pipe.execute()
            for key, entries in zip(active, replies, strict=True):
                hits = found[key]
                for _entry_id, fields in entries:
                    n, matches = decode_entry(fields, flt)
                    scanned += n
                    hits.extend(record for _, record in matches)
                if len(entries) < page:
                    del cursors[key]
                    continue
                cursors[key] = f"({_text(entries[-1][0])}"
                if len(hits) > query.limit:
                    hits[:] = _newest_first(hits)[: query.limit + 1]
                    # Older entries hold records no newer than their id + the entry span.
                    newest_ms = _entry_ms(entries[-1][0]) + span_ms
                    if query.limit == 0 or newest_ms < hits[-2].time_unix_nano // _NS_PER_MS:
                        more = True
                        del cursors[key]
            page = min(_MAX_PAGE, page * 2)
        merged = _newest_first([r for records in found.values() for r in records])
        truncated = cut_streams or more or bool(cursors) or len(merged) > query.limit
        return LogResult(records=tuple(merged[: query.limit]), truncated=truncated)

    async def _streams(self, query: LogQuery) -> tuple[list[str], bool]:
        """Stream keys the query reads, and whether the per-query stream bound cut them."""
        if query.cluster is not None and query.tag is not None:
            return [keys.log_stream_key(query.cluster, query.tag)], False
        s = self._settings
        since = query.start_unix_nano // _NS_PER_MS - s.registry_refresh_s * 1000
        with unavailable_on_redis_errors("reading the log stream registry"):
            members = await self._redis.zrangebyscore(keys.log_registry_key(), since, "+inf")
        selected: list[str] = []
        for member in members:
            try:
                cluster, tag = json.loads(member)
            except (ValueError, TypeError):
                continue
            if query.cluster not in (None, cluster) or query.tag not in (None, tag):
                continue
            selected.append(keys.log_stream_key(str(cluster), str(tag)))
        selected.sort()
        cut = len(selected) > s.max_streams_per_query
        return selected[: s.max_streams_per_query], cut

    async def _by_trace(self, query: LogQuery) -> LogResult:
        """Records linked to ``query.trace_id``, filtered by the other fields."""
        assert query.trace_id is not None
        s = self._settings
        with unavailable_on_redis_errors("reading a trace's logs"):
            refs = await self._redis.lrange(
                keys.trace_logs_key(query.trace_id), -s.max_logs_per_trace, -1
            )
        # Entry -> positions referenced in it (None: a reference without a position).
        wanted: dict[tuple[str, str], set[int] | None] = {}
        for ref in refs:
            key, _, entry_id = _text(ref).rpartition("\n")  # a tag may hold a newline
            index = ""
            if "-" not in entry_id:  # ``<stream key>\n<entry id>\n<index in entry>``
                index = entry_id
                key, _, entry_id = key.rpartition("\n")
            positions = wanted.setdefault((key, entry_id), set())
            if positions is not None and index.isdigit():
                positions.add(int(index))
            else:
                wanted[(key, entry_id)] = None
        if not wanted:
            return LogResult(records=(), truncated=False)
        pipe = self._redis.pipeline(transaction=False)
        for key, entry_id in wanted:
            pipe.xrange(key, entry_id, entry_id, count=1)
        with unavailable_on_redis_errors("reading a trace's logs"):
            replies = await pipe.execute()
        flt = query.row_filter()
        records = []
        for positions, entries in zip(wanted.values(), replies, strict=True):
            indexes = frozenset(positions) if positions is not None else None
            for _, fields in entries:
                for _, record in decode_entry(fields, flt, indexes)[1]:
                    if query.cluster in (None, record.cluster) and query.tag in (None, record.tag):
                        records.append(record)
        records = _newest_first(records)
        return LogResult(
            records=tuple(records[: query.limit]), truncated=len(records) > query.limit
        )

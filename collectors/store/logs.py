"""The log store: one Redis Stream per (cluster, tag), ids from record times, trimmed by age.

A server-side script appends a chunk of records to a stream with ids ``<record ms>-<seq>``
(a late record is clamped to the stream's last id, a future one to now + skew), trims by
``MINID`` and refreshes the key's TTL, so a time-range read is an XRANGE over ids. Records
with a trace id are also referenced from the trace's own key (``{trace id}`` hash tag) for
correlation. The set of streams lives in a registry ZSET that each writer touches only when
it first sees a stream and then once per refresh period. See docs/adr/0003.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.logs.v1.logs_pb2 import ResourceLogs

from collectors.errors import PermanentError
from collectors.model import LogRecord, TraceId
from collectors.otlp_convert import log_to_otlp, logs_from_otlp
from collectors.store import keys
from collectors.store.connection import RedisClient, unavailable_on_redis_errors
from collectors.store.trace_logs_settings import LogSettings
from collectors.store.traces import SeenCache

log = logging.getLogger(__name__)

_NS_PER_MS = 1_000_000
_PAGE_MAX = 1_000

# KEYS[1] stream; ARGV: minid ms, max id ms, ttl s, then (record ms, payload) pairs.
# Returns the ids given, in order. Ids only grow: a record older than the stream's last id
# takes that id's time with the next sequence number.
APPEND_SCRIPT = """
local key = KEYS[1]
local last_ms, last_seq = 0, 0
if redis.call('EXISTS', key) == 1 then
  local info = redis.call('XINFO', 'STREAM', key)
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then
      local a, b = string.match(info[i + 1], '(%d+)-(%d+)')
      last_ms = tonumber(a)
      last_seq = tonumber(b)
    end
  end
end
local cap = tonumber(ARGV[2])
local ids = {}
for i = 4, #ARGV, 2 do
  local ms = tonumber(ARGV[i])
  if ms > cap then ms = cap end
  if ms < 1 then ms = 1 end
  local seq = 0
  if ms <= last_ms then
    ms = last_ms
    seq = last_seq + 1
  end
  local id = string.format('%.0f-%.0f', ms, seq)
  redis.call('XADD', key, 'MINID', '~', ARGV[1], id, 'p', ARGV[i + 1])
  last_ms = ms
  last_seq = seq
  ids[#ids + 1] = id
end
redis.call('EXPIRE', key, ARGV[3])
return ids
"""


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


@dataclass(frozen=True, slots=True)
class LogResult:
    """Matching records, newest first; ``truncated`` if more may match than returned."""

    records: tuple[LogRecord, ...]
    truncated: bool


def record_matches(record: LogRecord, query: LogQuery) -> bool:
    """Every filter of ``query`` except the stream selection (cluster, tag) and trace id."""
    if not query.start_unix_nano <= record.time_unix_nano <= query.end_unix_nano:
        return False
    if query.min_severity is not None and int(record.severity_number) < query.min_severity:
        return False
    if query.contains is not None and query.contains not in record.body:
        return False
    return query.trace_id is None or record.trace_id == query.trace_id


def _decode(payload: bytes) -> LogRecord | None:
    message = ResourceLogs()
    try:
        message.ParseFromString(payload)
        records = logs_from_otlp(message)
    except (DecodeError, PermanentError):
        return None
    return records[0] if records else None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


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
        self._registered = SeenCache(settings.client_cache_entries)
        self.expired_dropped = 0
        """Records refused because they were older than the retention (counted, not logged)."""

    @property
    def settings(self) -> LogSettings:
        return self._settings

    async def write_logs(self, records: Sequence[LogRecord]) -> None:
        """Append ``records``; returns only after Redis acknowledged them and their trace links.

        Raises ``StoreUnavailableError`` (retryable) when Redis is unreachable or refuses,
        ``PermanentError`` when a record cannot be encoded (bad trace or span id).
        """
        s = self._settings
        now_ms = int(self._clock() * 1000)
        min_ms = now_ms - s.retention_s * 1000
        streams: dict[tuple[str, str], list[LogRecord]] = defaultdict(list)
        for record in records:
            if record.time_unix_nano // _NS_PER_MS < min_ms:
                self.expired_dropped += 1
                continue
            streams[(record.cluster, record.tag)].append(record)
        if not streams:
            return
        pipe = self._redis.pipeline(transaction=False)
        chunks: list[tuple[str, list[LogRecord], int]] = []  # key, records, reply index
        n_commands = 0
        period = now_ms // (s.registry_refresh_s * 1000)
        touched = False
        for (cluster, tag), items in streams.items():
            key = keys.log_stream_key(cluster, tag)
            for i in range(0, len(items), s.write_chunk):
                chunk = items[i : i + s.write_chunk]
                args: list[Any] = [min_ms, now_ms + s.max_future_skew_s * 1000, s.retention_s]
                for record in chunk:
                    args.append(record.time_unix_nano // _NS_PER_MS)
                    args.append(log_to_otlp(record).SerializeToString())
                pipe.eval(APPEND_SCRIPT, 1, key, *args)
                chunks.append((key, chunk, n_commands))
                n_commands += 1
            member = json.dumps([cluster, tag])
            if self._registered.first_time(f"{member}\n{period}"):
                pipe.zadd(keys.log_registry_key(), {member: now_ms})
                n_commands += 1
                touched = True
        if touched:
            stale = now_ms - (s.retention_s + s.registry_refresh_s) * 1000
            pipe.zremrangebyscore(keys.log_registry_key(), "-inf", stale)
        with unavailable_on_redis_errors(f"writing {len(records)} log records"):
            replies = await pipe.execute()
        await self._link_traces(chunks, replies)

    async def _link_traces(
        self, chunks: list[tuple[str, list[LogRecord], int]], replies: list[Any]
    ) -> None:
        s = self._settings
        refs: dict[str, list[str]] = defaultdict(list)
        for key, chunk, index in chunks:
            for record, entry_id in zip(chunk, replies[index], strict=True):
                if record.trace_id:
                    refs[record.trace_id].append(f"{key}\n{_text(entry_id)}")
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
        hi = query.end_unix_nano // _NS_PER_MS + s.late_arrival_window_s * 1000
        lo = max(0, query.start_unix_nano // _NS_PER_MS - s.max_future_skew_s * 1000)
        cursors: dict[str, str] = {key: str(hi) for key in streams}
        found: dict[str, list[LogRecord]] = {key: [] for key in streams}
        page = min(_PAGE_MAX, max(query.limit, 100))
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
                scanned += len(entries)
                for _entry_id, fields in entries:
                    record = _decode(fields.get(b"p", b""))
                    if record is not None and record_matches(record, query):
                        found[key].append(record)
                if len(entries) < page or len(found[key]) > query.limit:
                    more = more or len(found[key]) > query.limit
                    del cursors[key]
                else:
                    cursors[key] = f"({_text(entries[-1][0])}"
        merged = sorted(
            (r for records in found.values() for r in records),
            key=lambda r: r.time_unix_nano,
            reverse=True,
        )
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
        if not refs:
            return LogResult(records=(), truncated=False)
        pipe = self._redis.pipeline(transaction=False)
        for ref in refs:
            key, _, entry_id = _text(ref).partition("\n")
            pipe.xrange(key, entry_id, entry_id, count=1)
        with unavailable_on_redis_errors("reading a trace's logs"):
            replies = await pipe.execute()
        records = []
        for entries in replies:
            for _, fields in entries:
                record = _decode(fields.get(b"p", b""))
                if record is None or not record_matches(record, query):
                    continue
                if query.cluster not in (None, record.cluster) or query.tag not in (
                    None,
                    record.tag,
                ):
                    continue
                records.append(record)
        records.sort(key=lambda r: r.time_unix_nano, reverse=True)
        return LogResult(
            records=tuple(records[: query.limit]), truncated=len(records) > query.limit
        )

"""The trace store: spans grouped per trace in Redis, searchable by service and time bucket.

One trace is one hash tag (``{trace id}``), so a read by id is a single LRANGE on one node.
Search indexes are keyed per (service, time bucket) so writes spread over many slots; the
writer remembers which index entries it already wrote (bounded) to send each SADD once.
Layout and trade-offs: docs/adr/0003-store-traces-logs-layout.md.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from collectors._core.model import Span, TraceId
from collectors.store import keys
from collectors.store.connection import RedisClient, unavailable_on_redis_errors
from collectors.store.trace_codec import decode_batches, encode_batch, group_by_trace, index_entries
from collectors.store.trace_logs_settings import TraceSettings
from collectors.store.trace_query import (
    SearchResult,
    TraceQuery,
    TraceResult,
    TraceSummary,
    summarize,
    trace_matches,
)

log = logging.getLogger(__name__)


_NS_PER_S = 1_000_000_000
_INSPECT_CHUNK = 50


class SeenCache:
    """A bounded memory of index entries already written; cleared when full (then the
    writer re-sends a few idempotent SADDs, nothing worse)."""

    def __init__(self, max_entries: int) -> None:
        self._max = max_entries
        self._seen: set[str] = set()

    def first_time(self, entry: str) -> bool:
        """True the first time ``entry`` is offered (since the last clear)."""
        if entry in self._seen:
            return False
        if len(self._seen) >= self._max:
            self._seen.clear()
        self._seen.add(entry)
        return True


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class TraceStore:
    """Writes spans, reads traces by id, searches them, lists services, operations, tags."""

    def __init__(
        self,
        *,
        redis: RedisClient,
        settings: TraceSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        settings.validate()
        self._redis: Any = redis  # RedisClient: bytes replies; the stubs miss cluster commands
        self._settings = settings
        self._clock = clock
        self._seen = SeenCache(settings.client_cache_entries)
        self._tag_value_counts: dict[str, int] = {}

    @property
    def settings(self) -> TraceSettings:
        return self._settings

    def _bucket_expiry(self, bucket: int) -> int:
        """Unix seconds at which the index keys of ``bucket`` expire."""
        s = self._settings
        return (bucket + 1) * s.index_bucket_s + s.retention_s

    async def write_spans(self, spans: Sequence[Span]) -> None:
        """Store ``spans`` in one pipeline; returns only after Redis acknowledged every command.

        Raises ``StoreUnavailableError`` (retryable) when Redis is unreachable or refuses,
        ``PermanentError`` when a span cannot be encoded (bad ids).
        """
        if not spans:
            return
        s = self._settings
        now = int(self._clock())
        groups = group_by_trace(spans)
        batches = {tid: encode_batch(group) for tid, group in groups.items()}
        entries = index_entries(
            spans, bucket_s=s.index_bucket_s, max_value_len=s.tag_value_max_length
        )
        pipe = self._redis.pipeline(transaction=False)
        for tid, blob in batches.items():
            key = keys.trace_spans_key(tid)
            pipe.rpush(key, blob)
            pipe.expire(key, s.retention_s)
        for (service, bucket), starts in entries.starts.items():
            expiry = self._bucket_expiry(bucket)
            if expiry <= now:
                continue  # older than retention: stored by id, not searchable
            zkey = keys.trace_search_key(service, bucket)
            pipe.zadd(zkey, starts, lt=True)
            pipe.expireat(zkey, expiry)
            self._add_members(pipe, keys.trace_services_key(bucket), [service], expiry)
            ops = entries.operations[(service, bucket)]
            self._add_members(pipe, keys.trace_operations_key(service, bucket), ops, expiry)
        for (tag, bucket), values in entries.tags.items():
            expiry = self._bucket_expiry(bucket)
            if expiry <= now:
                continue
            self._add_members(pipe, keys.trace_tag_names_key(bucket), [tag], expiry)
            self._add_tag_values(pipe, keys.trace_tag_values_key(tag, bucket), values, expiry)
        with unavailable_on_redis_errors(f"writing {len(spans)} spans"):
            await pipe.execute()

    def _add_members(self, pipe: Any, key: str, members: Iterable[str], expiry: int) -> None:
        new = [m for m in members if self._seen.first_time(f"{key}\n{m}")]
        if new:
            pipe.sadd(key, *new)
            pipe.expireat(key, expiry)

    def _add_tag_values(self, pipe: Any, key: str, values: Iterable[str], expiry: int) -> None:
        budget = self._settings.max_tag_values - self._tag_value_counts.get(key, 0)
        if budget <= 0:
            return
        new = [v for v in values if self._seen.first_time(f"{key}\n{v}")][:budget]
        if new:
            if len(self._tag_value_counts) >= self._settings.client_cache_entries:
                self._tag_value_counts.clear()
            self._tag_value_counts[key] = self._tag_value_counts.get(key, 0) + len(new)
            pipe.sadd(key, *new)
            pipe.expireat(key, expiry)

    async def get_trace(self, trace_id: TraceId) -> TraceResult:
        """All stored spans of a trace (bounded); an unknown trace has no spans."""
        s = self._settings
        with unavailable_on_redis_errors(f"reading trace {trace_id}"):
            raw = await self._redis.lrange(
                keys.trace_spans_key(trace_id), 0, s.max_batches_per_trace
            )
        cut_batches = len(raw) > s.max_batches_per_trace
        spans, cut_spans = decode_batches(raw[: s.max_batches_per_trace], s.max_spans_per_trace)
        return TraceResult(spans=tuple(spans), truncated=cut_batches or cut_spans)

    def _buckets(self, start_ns: int, end_ns: int) -> list[int]:
        """Index buckets overlapping [start, end], newest first, within retention."""
        s = self._settings
        width = s.index_bucket_s * _NS_PER_S
        now_ns = int(self._clock() * _NS_PER_S)
        max_buckets = s.retention_s // s.index_bucket_s + 2
        newest = min(end_ns, now_ns + width) // width
        oldest = max(start_ns, now_ns - (s.retention_s + s.index_bucket_s) * _NS_PER_S) // width
        oldest = max(oldest, newest - max_buckets)
        return list(range(newest, oldest - 1, -1))

    async def _union(self, key_names: Sequence[str], limit: int | None = None) -> list[str]:
        if not key_names:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for key in key_names:
            pipe.smembers(key)
        with unavailable_on_redis_errors("reading the trace index"):
            replies = await pipe.execute()
        out = sorted({_text(m) for members in replies for m in members})
        return out if limit is None else out[:limit]

    def _retention_buckets(self) -> list[int]:
        now_ns = int(self._clock() * _NS_PER_S)
        return self._buckets(now_ns - self._settings.retention_s * _NS_PER_S, now_ns)

    async def services(self) -> list[str]:
        """Service names with spans inside the retention window, sorted."""
        return await self._union([keys.trace_services_key(b) for b in self._retention_buckets()])

    async def operations(self, service: str) -> list[str]:
        """Span names of ``service`` inside the retention window, sorted."""
        buckets = self._retention_buckets()
        return await self._union([keys.trace_operations_key(service, b) for b in buckets])

    async def tag_names(self) -> list[str]:
        """Span and resource attribute names inside the retention window, sorted."""
        return await self._union([keys.trace_tag_names_key(b) for b in self._retention_buckets()])

    async def tag_values(self, tag: str) -> list[str]:
        """Short values of attribute ``tag`` (at most ``max_tag_values``), sorted."""
        buckets = self._retention_buckets()
        names = [keys.trace_tag_values_key(tag, b) for b in buckets]
        return await self._union(names, limit=self._settings.max_tag_values)

    async def _candidates(self, query: TraceQuery, cap: int) -> list[TraceId]:
        """Trace ids whose indexed spans may match, newest first, at most ``cap + 1``."""
        buckets = self._buckets(query.start_unix_nano, query.end_unix_nano)
        if query.service is not None:
            services = [query.service]
        else:
            services = await self._union([keys.trace_services_key(b) for b in buckets])
        if not buckets or not services:
            return []
        end_ms = query.end_unix_nano // 1_000_000
        pipe = self._redis.pipeline(transaction=False)
        for bucket in buckets:
            for service in services:
                key = keys.trace_search_key(service, bucket)
                pipe.zrevrangebyscore(key, end_ms, "-inf", start=0, num=cap + 1, withscores=True)
        with unavailable_on_redis_errors("searching traces"):
            replies = await pipe.execute()
        best: dict[str, float] = {}
        for reply in replies:
            for member, score in reply:
                tid = _text(member)
                best[tid] = max(score, best.get(tid, score))
        ordered = sorted(best, key=lambda t: (-best[t], t))
        return [TraceId(t) for t in ordered[: cap + 1]]

    async def search(self, query: TraceQuery) -> SearchResult:
        """Traces matching ``query`` (rules in ``trace_query``), newest first, bounded."""
        s = self._settings
        cap = s.search_max_inspected_traces
        candidates = await self._candidates(query, cap)
        found: list[TraceSummary] = []
        inspected = 0
        inspected_bytes = 0
        for i in range(0, min(len(candidates), cap), _INSPECT_CHUNK):
            chunk = candidates[i : min(i + _INSPECT_CHUNK, cap)]
            pipe = self._redis.pipeline(transaction=False)
            for tid in chunk:
                pipe.lrange(keys.trace_spans_key(tid), 0, s.search_max_batches_per_trace - 1)
            with unavailable_on_redis_errors("searching traces"):
                replies = await pipe.execute()
            for tid, raw in zip(chunk, replies, strict=True):
                inspected += 1
                inspected_bytes += sum(len(b) for b in raw)
                spans, _ = decode_batches(raw, s.max_spans_per_trace)
                if trace_matches(spans, query):
                    found.append(summarize(tid, spans))
                    if len(found) >= query.limit:
                        break
            if len(found) >= query.limit:
                break
        truncated = inspected < len(candidates)  # more may match than returned
        found.sort(key=lambda t: (-t.start_time_unix_nano, t.trace_id))
        if inspected >= cap:
            log.info("trace search stopped at its bound of %d inspected traces", cap)
        return SearchResult(
            traces=tuple(found),
            truncated=truncated,
            inspected_traces=inspected,
            inspected_bytes=inspected_bytes,
        )

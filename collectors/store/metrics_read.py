"""The metrics read path: matchers -> series ids through the label index -> chunks, decoded.

Three pipelined round trips whatever the number of series: (1) the values of labels that
regex / negative matchers need, with the tier floors; (2) the posting set operations per
shard (``SINTER`` / ``SUNION`` inside one hash-tagged slot); (3) labels, chunks and heads of
every matched series. No step scans all series keys. Every read is bounded by
``LimitSettings`` and either fails with ``LimitExceededError`` (``select``, whose callers
need complete data) or says ``truncated`` (``series``, label pages).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from typing import Any

from collectors.errors import LimitExceededError
from collectors.store import keys
from collectors.store.chunks import decode_chunk, split_records, values_from_bits
from collectors.store.config import ChunkSettings, LimitSettings, TierSettings
from collectors.store.connection import RedisClient, unavailable_on_redis_errors
from collectors.store.metrics_model import (
    Page,
    Segment,
    check_selector,
    labels_from_json,
    names_needing_values,
    plan_segments,
    plan_shard,
)
from collectors.store.series import LabelMatcher, SeriesData

Ids = dict[int, set[bytes]]
"""Matched series ids per shard."""


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class SeriesReader:
    """Answers selectors and label queries from the index and the chunks."""

    def __init__(
        self,
        *,
        redis: RedisClient,
        chunks: ChunkSettings,
        tiers: Sequence[TierSettings],
        limits: LimitSettings,
    ) -> None:
        self._redis: Any = redis  # the redis stubs miss RedisCluster commands
        self._chunks = chunks
        self._tiers = tuple(tiers)
        self._limits = limits

    async def floors(self) -> dict[str, int]:
        with unavailable_on_redis_errors("read tier floors"):
            raw = await self._redis.hgetall(keys.tier_floors_key())
        return {_s(k): int(v) for k, v in raw.items()}

    async def match(self, matchers: Sequence[LabelMatcher]) -> Ids:
        """Ids of the series matching every matcher, per shard."""
        check_selector(matchers)
        shards = range(self._chunks.shards)
        names = names_needing_values(matchers)
        values: dict[int, dict[str, set[str]]] = {s: {} for s in shards}
        if names:
            pipe = self._redis.pipeline(transaction=False)
            for shard in shards:
                for name in names:
                    pipe.smembers(keys.label_values_key(shard, name))
            with unavailable_on_redis_errors("read label values"):
                replies = iter(await pipe.execute())
            for shard in shards:
                for name in names:
                    values[shard][name] = {_s(v) for v in next(replies)}
        pipe = self._redis.pipeline(transaction=False)
        layout: list[tuple[int, int, bool]] = []  # shard, positive sets, has exclusion
        for shard in shards:
            plan = plan_shard(matchers, values[shard])
            if plan.empty:
                continue
            positive = 0
            if plan.equal:
                pipe.execute_command(
                    "SINTER", *(keys.postings_key(shard, n, v) for n, v in plan.equal)
                )
                positive += 1
            for group in plan.unions:
                pipe.execute_command("SUNION", *(keys.postings_key(shard, n, v) for n, v in group))
                positive += 1
            if plan.excluded:
                pipe.execute_command(
                    "SUNION", *(keys.postings_key(shard, n, v) for n, v in plan.excluded)
                )
            layout.append((shard, positive, bool(plan.excluded)))
        if not layout:
            return {}
        with unavailable_on_redis_errors("read postings"):
            replies = iter(await pipe.execute())
        ids: Ids = {}
        for shard, positive, has_excluded in layout:
            sets = [set(next(replies)) for _ in range(positive)]
            found = set.intersection(*sets)
            if has_excluded:
                found -= set(next(replies))
            if found:
                ids[shard] = found
        return ids

    async def match_any(self, matcher_sets: Sequence[Sequence[LabelMatcher]]) -> Ids:
        ids: Ids = {}
        for matchers in matcher_sets:
            for shard, found in (await self.match(matchers)).items():
                ids.setdefault(shard, set()).update(found)
        return ids

    async def select(
        self, matchers: Sequence[LabelMatcher], start_ms: int, end_ms: int
    ) -> list[SeriesData]:
        ids = await self.match(matchers)
        count = sum(len(v) for v in ids.values())
        if count > self._limits.max_series_per_query:
            raise LimitExceededError(
                f"the selector matches {count} series, more than limits.max_series_per_query"
                f" ({self._limits.max_series_per_query}); narrow it"
            )
        segments = plan_segments(
            self._tiers,
            await self.floors(),
            start_ms,
            end_ms,
            max_samples=self._chunks.max_samples,
            max_span_ms=self._chunks.max_span_ms,
        )
        return await self.load(ids, segments)

    async def fetch(
        self, ids: Ids, segments: Sequence[Segment]
    ) -> list[tuple[int, str, bytes | None, list[int], bytes]]:
        """(shard, id, labels JSON, timestamps, value bytes) of ``ids`` in the segments, read
        with one pipeline; series without samples there are left out."""
        if not segments or not ids:
            return []
        pipe = self._redis.pipeline(transaction=False)
        order: list[tuple[int, list[bytes]]] = []
        for shard, found in sorted(ids.items()):
            members = sorted(found)
            order.append((shard, members))
            pipe.hmget(keys.series_labels_key(shard), members)
            for member in members:
                series_id = member.decode()
                for seg in segments:
                    pipe.zrangebyscore(
                        keys.chunks_key(shard, seg.tier.name, series_id),
                        seg.start_ms - seg.lookback_ms,
                        seg.end_ms,
                    )
                    if seg.tier.resolution_ms == 0:
                        pipe.get(keys.head_key(shard, series_id))
        with unavailable_on_redis_errors("read chunks"):
            replies = iter(await pipe.execute())
        out: list[tuple[int, str, bytes | None, list[int], bytes]] = []
        points = 0
        for shard, members in order:
            labels = next(replies)
            for member, label_blob in zip(members, labels, strict=True):
                timestamps: list[int] = []
                bits: list[bytes] = []
                for seg in segments:
                    blobs = list(next(replies))
                    head = next(replies) if seg.tier.resolution_ms == 0 else None
                    _append_segment(timestamps, bits, seg, blobs, head)
                if not timestamps:
                    continue
                points += len(timestamps)
                if points > self._limits.max_points_per_query:
                    raise LimitExceededError(
                        f"the query reads more than limits.max_points_per_query"
                        f" ({self._limits.max_points_per_query}) samples; shorten the range"
                    )
                out.append((shard, member.decode(), label_blob, timestamps, b"".join(bits)))
        return out

    async def load(self, ids: Ids, segments: Sequence[Segment]) -> list[SeriesData]:
        """Labels and samples of ``ids`` in the segments, sorted by labels."""
        out: list[tuple[list[str], SeriesData]] = []
        for _shard, _id, label_blob, timestamps, bits in await self.fetch(ids, segments):
            if label_blob is None:
                continue  # removed by retention while we read
            flat = labels_from_json(label_blob)
            data = SeriesData(flat, timestamps, values_from_bits(bits))
            out.append(([x for kv in flat.items() for x in kv], data))
        out.sort(key=lambda pair: pair[0])
        return [data for _, data in out]

    async def series(
        self,
        matcher_sets: Sequence[Sequence[LabelMatcher]],
        start_ms: int,
        end_ms: int,
        limit: int | None = None,
    ) -> Page[dict[str, str]]:
        """Label sets of series with samples in the window (``/api/v1/series``)."""
        ids = await self.match_any(matcher_sets)
        labels, truncated = await self._labels_in_window(ids, start_ms, end_ms)
        labels.sort(key=lambda d: [x for kv in d.items() for x in kv])
        if limit is not None and len(labels) > limit:
            return Page(labels[:limit], True)
        return Page(labels, truncated)

    async def _labels_in_window(
        self, ids: Ids, start_ms: int, end_ms: int
    ) -> tuple[list[dict[str, str]], bool]:
        budget = self._limits.max_series_per_query
        truncated = False
        pipe = self._redis.pipeline(transaction=False)
        for shard, found in sorted(ids.items()):
            members = sorted(found)[:budget]
            truncated |= len(found) > len(members)
            budget -= len(members)
            if not members:
                continue
            pipe.hmget(keys.series_labels_key(shard), members)
            pipe.hmget(keys.series_first_key(shard), members)
            pipe.hmget(keys.series_last_key(shard), members)
        with unavailable_on_redis_errors("read series"):
            replies = await pipe.execute()
        out: list[dict[str, str]] = []
        for i in range(0, len(replies), 3):
            for blob, first, last in zip(*replies[i : i + 3], strict=True):
                if blob is None or first is None or last is None:
                    continue
                first_ms = int.from_bytes(first[:8], "big", signed=True)
                last_ms = int.from_bytes(last[:8], "big", signed=True)
                if first_ms <= end_ms and last_ms >= start_ms:
                    out.append(labels_from_json(blob))
        return out, truncated

    async def label_names(
        self,
        matcher_sets: Sequence[Sequence[LabelMatcher]],
        start_ms: int,
        end_ms: int,
        limit: int | None = None,
    ) -> Page[str]:
        if not matcher_sets:
            pipe = self._redis.pipeline(transaction=False)
            for shard in range(self._chunks.shards):
                pipe.smembers(keys.label_names_key(shard))
            with unavailable_on_redis_errors("read label names"):
                return _page(await pipe.execute(), limit)
        ids = await self.match_any(matcher_sets)
        labels, truncated = await self._labels_in_window(ids, start_ms, end_ms)
        page = _page([set(d) for d in labels], limit)
        return Page(page.items, page.truncated or truncated)

    async def label_values(
        self,
        name: str,
        matcher_sets: Sequence[Sequence[LabelMatcher]],
        start_ms: int,
        end_ms: int,
        limit: int | None = None,
    ) -> Page[str]:
        if not matcher_sets:
            pipe = self._redis.pipeline(transaction=False)
            for shard in range(self._chunks.shards):
                pipe.smembers(keys.label_values_key(shard, name))
            with unavailable_on_redis_errors("read label values"):
                return _page(await pipe.execute(), limit)
        ids = await self.match_any(matcher_sets)
        labels, truncated = await self._labels_in_window(ids, start_ms, end_ms)
        page = _page([{d[name]} for d in labels if name in d], limit)
        return Page(page.items, page.truncated or truncated)


def _page(sets: Iterable[Iterable[bytes | str]], limit: int | None) -> Page[str]:
    merged = sorted({_s(v) for values in sets for v in values})
    if limit is not None and len(merged) > limit:
        return Page(merged[:limit], True)
    return Page(merged)


def _append_segment(
    timestamps: list[int], bits: list[bytes], seg: Segment, blobs: list[bytes], head: bytes | None
) -> None:
    """Decode one segment's chunks (and head) and keep samples in ``[start, end]``."""
    seg_ts: list[int] = []
    seg_bits: list[bytes] = []
    for blob in blobs:
        ts, vb = decode_chunk(blob)
        seg_ts.extend(ts)
        seg_bits.append(vb)
    if head:
        ts, vb = split_records(head)
        seg_ts.extend(ts)
        seg_bits.append(vb)
    if not seg_ts:
        return
    joined = b"".join(seg_bits)
    lo = bisect_left(seg_ts, seg.start_ms)
    hi = bisect_right(seg_ts, seg.end_ms)
    if lo < hi:
        timestamps.extend(seg_ts[lo:hi])
        bits.append(joined[8 * lo : 8 * hi])

"""The metrics read path: matchers -> series ids through the label index -> chunks, decoded.

Three pipelined round trips whatever the number of series: (1) the values of labels that
regex / negative matchers need, with the tier floors; (2) the posting set operations per
shard (``SINTER`` / ``SUNION`` inside one hash-tagged slot); (3) labels, chunks and heads of
every matched series, by a read script per shard (and per 500 series): one reply per call
instead of one per key, which is most of the client's cost for a thousand series. No step
scans all series keys. Every read is bounded by
``LimitSettings`` and either fails with ``LimitExceededError`` (``select``, whose callers
need complete data) or says ``truncated`` (``series``, label pages).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from collectors._core.errors import LimitExceededError
from collectors.promql.source import LabelMatcher, Page, SeriesData
from collectors.store import keys
from collectors.store.config import ChunkSettings, LimitSettings, TierSettings
from collectors.store.connection import RedisClient, unavailable_on_redis_errors
from collectors.store.metrics_columns import Part, assemble
from collectors.store.metrics_lua import Script, run_pipelined
from collectors.store.metrics_model import (
    Segment,
    check_selector,
    names_needing_values,
    plan_segments,
    plan_shard,
)
from collectors.store.series_window import labels_in_window

Ids = dict[int, set[bytes]]
"""Matched series ids per shard."""

_SERIES_PER_READ = 500
"""Series per read script call: bounds how long one call blocks Redis and its reply size."""

# KEYS: 1 the shard's series table, then per series and segment its chunks key (and its
# head key when the segment is of the raw tier). ARGV: 1 segment count, then per segment
# min score, max score, 1 if it has heads; then the series ids. Returns per series its
# labels JSON (or false), then per segment the chunks (and the head, or false).
READ_LUA = r"""
local nseg = tonumber(ARGV[1])
local lows, highs, heads = {}, {}, {}
for s = 1, nseg do
  lows[s], highs[s], heads[s] = ARGV[3 * s - 1], ARGV[3 * s], ARGV[3 * s + 1] == '1'
end
local out, k = {}, 2
for i = 2 + 3 * nseg, #ARGV do
  out[#out + 1] = redis.call('HGET', KEYS[1], ARGV[i])
  for s = 1, nseg do
    out[#out + 1] = redis.call('ZRANGEBYSCORE', KEYS[k], lows[s], highs[s])
    k = k + 1
    if heads[s] then
      out[#out + 1] = redis.call('GET', KEYS[k])
      k = k + 1
    end
  end
end
return out
"""
READ = Script(READ_LUA)

_Layout = list[tuple[int, bytes, bytes | None, list[tuple[Segment, int, int, bytes]]]]
"""(shard, id, labels JSON, [(segment, index of its first blob, blob count, head)])."""

Columns = tuple[int, str, bytes | None, npt.NDArray[np.int64], npt.NDArray[np.uint64]]
"""(shard, id, labels JSON, timestamps, value bits as native uint64) of one series."""


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
        """(shard, id, labels JSON, timestamps, big-endian value bytes) of ``ids`` in the
        segments, read with one pipeline; series without samples there are left out."""
        return [
            (shard, sid, blob, ts.tolist(), bits.astype(">u8").tobytes())
            for shard, sid, blob, ts, bits in await self.fetch_columns(ids, segments)
        ]

    async def fetch_columns(self, ids: Ids, segments: Sequence[Segment]) -> list[Columns]:
        """``fetch`` as numpy columns: views of one pair of arrays, decoded in one batch."""
        return (await self._columns(ids, segments))[0]

    async def _columns(
        self, ids: Ids, segments: Sequence[Segment]
    ) -> tuple[list[Columns], npt.NDArray[np.int64], npt.NDArray[np.uint64]]:
        """Per-series columns and the two arrays they are consecutive views of."""
        if not segments or not ids:
            return [], np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint64)
        layout, blobs = await self._read_raw(ids, segments)
        timestamps, bits, kept = assemble(
            blobs,
            [
                Part(first, count, head, seg.start_ms, seg.end_ms)
                for *_, parts in layout
                for seg, first, count, head in parts
            ],
        )
        if len(timestamps) > self._limits.max_points_per_query:
            raise LimitExceededError(
                f"the query reads more than limits.max_points_per_query"
                f" ({self._limits.max_points_per_query}) samples; shorten the range"
            )
        out: list[Columns] = []
        at, part = 0, 0
        for shard, member, label_blob, parts in layout:
            n = sum(kept[part : part + len(parts)])
            part += len(parts)
            if n:
                out.append(
                    (shard, member.decode(), label_blob, timestamps[at : at + n], bits[at : at + n])
                )
            at += n
        return out, timestamps, bits

    async def _read_raw(self, ids: Ids, segments: Sequence[Segment]) -> tuple[_Layout, list[bytes]]:
        """Labels, chunk blobs and heads of every series; blobs in one list, in order."""
        calls: list[tuple[list[str], list[object]]] = []
        batches: list[tuple[int, list[bytes]]] = []
        seg_args: list[object] = [len(segments)]
        for seg in segments:
            raw = seg.tier.resolution_ms == 0
            seg_args += [seg.start_ms - seg.lookback_ms, seg.end_ms, 1 if raw else 0]
        for shard, found in sorted(ids.items()):
            members = sorted(found)
            for i in range(0, len(members), _SERIES_PER_READ):
                batch = members[i : i + _SERIES_PER_READ]
                series_keys = [keys.series_labels_key(shard)]
                for member in batch:
                    series_id = member.decode()
                    for seg in segments:
                        series_keys.append(keys.chunks_key(shard, seg.tier.name, series_id))
                        if seg.tier.resolution_ms == 0:
                            series_keys.append(keys.head_key(shard, series_id))
                calls.append((series_keys, [*seg_args, *batch]))
                batches.append((shard, batch))
        with unavailable_on_redis_errors("read chunks"):
            answers = await run_pipelined(self._redis, READ, calls)
        layout: _Layout = []
        blobs: list[bytes] = []
        for (shard, batch), answer in zip(batches, answers, strict=True):
            assert isinstance(answer, list)
            replies = iter(answer)
            for member in batch:
                label_blob = next(replies)
                parts = []
                for seg in segments:
                    found = next(replies)
                    head = next(replies) if seg.tier.resolution_ms == 0 else None
                    parts.append((seg, len(blobs), len(found), head or b""))
                    blobs.extend(found)
                layout.append((shard, member, label_blob, parts))
        return layout, blobs

    async def load(self, ids: Ids, segments: Sequence[Segment]) -> list[SeriesData]:
        """Labels and samples of ``ids`` in the segments, sorted by labels.

        Samples come as ``memoryview`` slices (formats ``q`` and ``d``) of one array per
        column: real sequences that numpy (the query engine) reads without a copy, and that
        keep NaN payloads bit for bit.
        """
        columns, timestamps, bits = await self._columns(ids, segments)
        all_ts = timestamps.data.cast("B").cast("q")
        all_values = bits.data.cast("B").cast("d")
        out: list[tuple[list[str], SeriesData]] = []
        at = 0
        # one JSON parse for every label set (each is a flat [name, value, ...] array)
        blobs = [c[2] for c in columns if c[2] is not None]
        flats = iter(json.loads(b"[" + b",".join(blobs) + b"]"))
        for _shard, _id, label_blob, series_ts, _bits in columns:
            start, at = at, at + len(series_ts)
            if label_blob is None:
                continue  # removed by retention while we read
            flat = next(flats)
            labels = dict(zip(flat[::2], flat[1::2], strict=True))
            out.append((flat, SeriesData(labels, all_ts[start:at], all_values[start:at])))
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
        return await labels_in_window(self._redis, ids, start_ms, end_ms, budget)

    async def label_names(
        self,
        matcher_sets: Sequence[Sequence[LabelMatcher]],
        start_ms: int,
        end_ms: int,
        limit: int | None = None,
    ) -> Page[str]:
        if not matcher_sets:
            return await self._all_shards_page(keys.label_names_key, "read label names", limit)
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
            return await self._all_shards_page(
                lambda shard: keys.label_values_key(shard, name), "read label values", limit
            )
        ids = await self.match_any(matcher_sets)
        labels, truncated = await self._labels_in_window(ids, start_ms, end_ms)
        page = _page([{d[name]} for d in labels if name in d], limit)
        return Page(page.items, page.truncated or truncated)

    async def _all_shards_page(
        self, set_key: Callable[[int], str], what: str, limit: int | None
    ) -> Page[str]:
        """The sorted union of one set per shard (every stored label name, or value)."""
        pipe = self._redis.pipeline(transaction=False)
        for shard in range(self._chunks.shards):
            pipe.smembers(set_key(shard))
        with unavailable_on_redis_errors(what):
            return _page(await pipe.execute(), limit)


def _page(sets: Iterable[Iterable[bytes | str]], limit: int | None) -> Page[str]:
    merged = sorted({_s(v) for values in sets for v in values})
    if limit is not None and len(merged) > limit:
        return Page(merged[:limit], True)
    return Page(merged)

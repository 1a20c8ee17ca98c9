"""Periodic metrics maintenance: cut idle heads, downsample tiers, apply retention.

A background task calls ``Compactor.run(now_ms)``; it walks each shard's series with
``SSCAN`` in bounded batches, so its memory does not grow with the number of series.

- Heads of series idle for ``chunks.max_span_ms`` are cut into chunks (writes cut busy ones).
- Tier ``i`` is built from tier ``i - 1`` in aligned blocks of ``resolution * max_samples``,
  keeping the last sample of each ``resolution`` interval (so counters and ``rate`` still
  work); a per-series watermark records the blocks done. Redoing a block writes the same
  bytes, so a crash between chunk and watermark is harmless.
- Chunks wholly older than a tier's retention are deleted, but never raw data not yet
  downsampled; series left without data leave the index. Reads then use the recorded floors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from collectors.store import keys
from collectors.store.chunks import RECORD_SIZE, encode_chunk
from collectors.store.config import ChunkSettings, LimitSettings, TierSettings
from collectors.store.connection import RedisClient, unavailable_on_redis_errors
from collectors.store.metrics_lua import TRIM, run_pipelined
from collectors.store.metrics_model import Segment, labels_from_json
from collectors.store.metrics_read import SeriesReader
from collectors.store.metrics_write import SampleWriter

_SCAN_BATCH = 500
_MAX_SCAN_STEPS = 100_000
_MAX_BLOCKS_PER_RUN = 16
"""Blocks one run downsamples per series and tier (a backlog is worked off over runs)."""


@dataclass(frozen=True, slots=True)
class CompactionReport:
    """What one ``run`` did (counts for metrics and logs)."""

    series_scanned: int = 0
    heads_cut: int = 0
    blocks_downsampled: int = 0
    series_removed: int = 0


def downsample(
    timestamps: Sequence[int], bits: bytes, resolution_ms: int
) -> tuple[list[int], bytes]:
    """The last sample of every ``resolution_ms`` interval (timestamps kept as they were)."""
    buckets = [t // resolution_ms for t in timestamps]
    keep = [i for i in range(len(buckets)) if i == len(buckets) - 1 or buckets[i] != buckets[i + 1]]
    return [timestamps[i] for i in keep], b"".join(bits[8 * i : 8 * i + 8] for i in keep)


class Compactor:
    """Maintenance of the metrics data; safe to run concurrently with writers."""

    def __init__(
        self,
        *,
        redis: RedisClient,
        reader: SeriesReader,
        writer: SampleWriter,
        chunks: ChunkSettings,
        tiers: Sequence[TierSettings],
        limits: LimitSettings,
    ) -> None:
        self._redis: Any = redis  # the redis stubs miss RedisCluster commands
        self._reader = reader
        self._writer = writer
        self._chunks = chunks
        self._tiers = tuple(tiers)
        self._limits = limits

    async def run(self, now_ms: int) -> CompactionReport:
        totals = [0, 0, 0, 0]
        for shard in range(self._chunks.shards):
            cursor: int = 0
            for _ in range(_MAX_SCAN_STEPS):
                with unavailable_on_redis_errors("scan series"):
                    cursor, members = await self._redis.sscan(
                        keys.series_all_key(shard), cursor, count=_SCAN_BATCH
                    )
                if members:
                    ids = sorted(m.decode() for m in members)
                    for i, n in enumerate(await self._batch(shard, ids, now_ms)):
                        totals[i] += n
                if cursor == 0:
                    break
        floors = {t.name: now_ms - t.retention_ms for t in self._tiers}
        with unavailable_on_redis_errors("record tier floors"):
            await self._redis.hset(keys.tier_floors_key(), mapping=floors)
        return CompactionReport(*totals)

    async def _batch(self, shard: int, ids: list[str], now_ms: int) -> tuple[int, int, int, int]:
        cut = await self._cut_idle(shard, ids, now_ms)
        blocks = 0
        for i in range(1, len(self._tiers)):
            blocks += await self._downsample(shard, ids, i, now_ms)
        removed = await self._trim(shard, ids, now_ms)
        return len(ids), cut, blocks, removed

    async def _cut_idle(self, shard: int, ids: list[str], now_ms: int) -> int:
        pipe = self._redis.pipeline(transaction=False)
        for series_id in ids:
            pipe.get(keys.head_key(shard, series_id))
        with unavailable_on_redis_errors("read heads"):
            heads = await pipe.execute()
        idle: list[tuple[str, bytes]] = []
        full: list[tuple[str, bytes]] = []
        for series_id, head in zip(ids, heads, strict=True):
            if not head:
                continue
            last_ms = int.from_bytes(head[-RECORD_SIZE : -RECORD_SIZE + 8], "big", signed=True)
            if last_ms < now_ms - self._chunks.max_span_ms:
                idle.append((series_id, head))
            elif len(head) >= RECORD_SIZE * self._chunks.max_samples:
                full.append((series_id, head))
        done = await self._writer.cut(idle, force=True) if idle else 0
        return done + (await self._writer.cut(full, force=False) if full else 0)

    async def _downsample(self, shard: int, ids: list[str], index: int, now_ms: int) -> int:
        tier, source = self._tiers[index], self._tiers[index - 1]
        block = tier.resolution_ms * self._chunks.max_samples
        pipe = self._redis.pipeline(transaction=False)
        pipe.hmget(keys.watermark_key(shard, tier.name), ids)
        pipe.hmget(keys.series_first_key(shard), ids)
        if index > 1:
            pipe.hmget(keys.watermark_key(shard, source.name), ids)
        with unavailable_on_redis_errors("read watermarks"):
            replies = await pipe.execute()
        ready = [now_ms - self._chunks.max_span_ms] * len(ids)
        if index > 1:
            ready = [int(x) if x is not None else -(2**62) for x in replies[2]]
        todo: dict[tuple[int, int], list[str]] = {}
        for series_id, wm, first, until in zip(ids, replies[0], replies[1], ready, strict=True):
            if first is None:
                continue
            first_ms = int.from_bytes(first[:8], "big", signed=True)
            start = int(wm) if wm is not None else first_ms // block * block
            for _ in range(_MAX_BLOCKS_PER_RUN):
                if start + block > until:
                    break
                todo.setdefault((start, start + block), []).append(series_id)
                start += block
        lookback = (
            self._chunks.max_span_ms
            if index == 1
            else source.resolution_ms * self._chunks.max_samples
        )
        for (lo, hi), members in sorted(todo.items()):
            segment = Segment(source, lo, hi - 1, lookback)
            found = await self._reader.fetch({shard: {m.encode() for m in members}}, [segment])
            pipe = self._redis.pipeline(transaction=False)
            for _shard, series_id, _labels, timestamps, bits in found:
                ts, vb = downsample(timestamps, bits, tier.resolution_ms)
                pipe.zadd(
                    keys.chunks_key(shard, tier.name, series_id), {encode_chunk(ts, vb): ts[0]}
                )
            pipe.hset(keys.watermark_key(shard, tier.name), mapping=dict.fromkeys(members, hi))
            with unavailable_on_redis_errors("write downsampled chunks"):
                await pipe.execute()
        return sum(len(m) for m in todo.values())

    async def _trim(self, shard: int, ids: list[str], now_ms: int) -> int:
        pipe = self._redis.pipeline(transaction=False)
        pipe.hmget(keys.series_labels_key(shard), ids)
        for tier in self._tiers[1:]:
            pipe.hmget(keys.watermark_key(shard, tier.name), ids)
        with unavailable_on_redis_errors("read series for retention"):
            labels, *marks = await pipe.execute()
        calls = []
        for j, series_id in enumerate(ids):
            if labels[j] is None:
                continue
            tenant = labels_from_json(labels[j]).get(self._limits.tenant_label, "")
            minimums: list[object] = []
            for i, tier in enumerate(self._tiers):
                keep_from = now_ms - tier.retention_ms
                if i + 1 < len(self._tiers):
                    done = marks[i][j]
                    keep_from = min(keep_from, int(done) if done is not None else -(2**62))
                lookback = (
                    self._chunks.max_span_ms
                    if i == 0
                    else tier.resolution_ms * self._chunks.max_samples
                )
                minimums.append(keep_from - lookback)
            calls.append(
                (
                    [
                        keys.series_labels_key(shard),
                        keys.series_all_key(shard),
                        keys.series_last_key(shard),
                        keys.series_first_key(shard),
                        keys.tenant_series_key(shard),
                        keys.head_key(shard, series_id),
                        *(keys.chunks_key(shard, t.name, series_id) for t in self._tiers),
                        *(keys.watermark_key(shard, t.name) for t in self._tiers[1:]),
                    ],
                    [
                        series_id,
                        tenant,
                        len(self._tiers),
                        keys.postings_prefix(shard),
                        keys.label_values_prefix(shard),
                        keys.label_names_key(shard),
                        *minimums,
                    ],
                )
            )
        with unavailable_on_redis_errors("apply retention"):
            done = await run_pipelined(self._redis, TRIM, calls)
        return sum(1 for x in done if x == 1)

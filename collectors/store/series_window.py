"""Which series have samples in a time window, and their labels: what ``/api/v1/series``
and the label names/values API with matchers list.

A series is in the window when its first sample (``first``) is not after the window's end
and its last one is not before its start. The last sample is the ``last`` entry's, except
in a shard marked ``last_lags``: there the write module leaves the entry behind a non-empty
head (docs/adr/0018-redis-write-module.md), so a series whose entry ends before the window
has its head's tail read in a second round trip.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collectors.store import keys
from collectors.store.chunks import RECORD_SIZE
from collectors.store.connection import unavailable_on_redis_errors
from collectors.store.metrics_model import labels_from_json


async def labels_in_window(
    redis: Any,  # the redis stubs miss RedisCluster commands
    ids: Mapping[int, set[bytes]],
    start_ms: int,
    end_ms: int,
    budget: int,
) -> tuple[list[dict[str, str]], bool]:
    """Labels of the series of ``ids`` (shard -> series ids) with samples in
    ``[start_ms, end_ms]``, at most ``budget`` series read; whether some were left out."""
    truncated = False
    pipe = redis.pipeline(transaction=False)
    shards: list[tuple[int, list[bytes]]] = []
    for shard, found in sorted(ids.items()):
        members = sorted(found)[:budget]
        truncated |= len(found) > len(members)
        budget -= len(members)
        if not members:
            continue
        shards.append((shard, members))
        pipe.hmget(keys.series_labels_key(shard), members)
        pipe.hmget(keys.series_first_key(shard), members)
        pipe.hmget(keys.series_last_key(shard), members)
        pipe.exists(keys.series_last_lags_key(shard))
    with unavailable_on_redis_errors("read series"):
        replies = await pipe.execute()
    out: list[dict[str, str]] = []
    behind: list[tuple[int, bytes, bytes]] = []
    for (shard, members), i in zip(shards, range(0, len(replies), 4), strict=True):
        labels, firsts, lasts, lags = replies[i : i + 4]
        for sid, blob, first, last in zip(members, labels, firsts, lasts, strict=True):
            if blob is None or first is None or last is None:
                continue
            if int.from_bytes(first[:8], "big", signed=True) > end_ms:
                continue
            if int.from_bytes(last[:8], "big", signed=True) >= start_ms:
                out.append(labels_from_json(blob))
            elif lags:  # the entry may lag the head: its tail has the last timestamp
                behind.append((shard, sid, blob))
    if behind:
        out += await _heads_reaching(redis, behind, start_ms)
    return out, truncated


async def _heads_reaching(
    redis: Any, series: list[tuple[int, bytes, bytes]], start_ms: int
) -> list[dict[str, str]]:
    """Labels of the (shard, id, labels JSON) series whose head ends at ``start_ms`` or
    later."""
    pipe = redis.pipeline(transaction=False)
    for shard, sid, _blob in series:
        pipe.getrange(keys.head_key(shard, sid.decode()), -RECORD_SIZE, -RECORD_SIZE + 7)
    with unavailable_on_redis_errors("read series"):
        tails = await pipe.execute()
    return [
        labels_from_json(blob)
        for (_shard, _sid, blob), tail in zip(series, tails, strict=True)
        if len(tail) == 8 and int.from_bytes(tail, "big", signed=True) >= start_ms
    ]

"""The metrics write path: a batch of samples in, one pipelined round trip to Redis.

Samples are grouped per series (sorted, de-duplicated inside the batch) and packed into one
argument per shard (``metrics_pack``, natively where ``meshfed_native`` is installed). One
``MESHFED.WRITE`` per shard (meshfed's Redis module, ``metrics_module``) appends them to
the heads of their series and creates new series with their index entries; the rare
entries it leaves (labels with JSON escapes) go to one Lua call per shard. Where the module
is not loaded the Lua calls do all of it. Heads that reached a chunk's size come back in
the replies and are cut into compressed chunks with one more pipeline — about once per
``chunks.max_samples`` samples of a series. The call returns only after Redis acknowledged
the appends (AOF on), so a receiver may acknowledge upstream when it returns.
"""

from __future__ import annotations

import logging
import math
import struct
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import redis.exceptions as rexc
from redis.asyncio import Redis

from collectors._core.component import WriteResult
from collectors._core.errors import LimitExceededError, StoreUnavailableError
from collectors._core.model import Sample
from collectors._core.series_batch import SeriesBatch, SeriesLabels, derived_per_series
from collectors.store import keys
from collectors.store.chunks import (
    RECORD_SIZE,
    bits_from_values,
    encode_records,
    native_function,
    split_head,
)
from collectors.store.config import ChunkSettings, LimitSettings
from collectors.store.connection import RedisClient, unavailable_on_redis_errors
from collectors.store.encoded_calls import encode_prefix, send_calls
from collectors.store.metrics_lua import CUT, WRITE, run_pipelined, write_arguments
from collectors.store.metrics_model import SeriesKey, fast_series_key
from collectors.store.metrics_module import (
    cannot_run_write,
    module_args,
    module_loaded,
    read_reply,
)
from collectors.store.metrics_pack import (
    PerShard,
    add,
    pack_native,
    pack_python,
    relabel,
    shard_calls,
    sorted_unique,
    unlabelled,
)

log = logging.getLogger(__name__)

_KEY_CACHE_MAX = 200_000
"""Remembered (name, labels) -> series identity (and the like); cleared when full."""
_native_entry: Callable[..., tuple[str, int, bytes] | None] | None = native_function("series_entry")
"""``meshfed_native.series_entry``: ``fast_series_key`` and ``_prefix`` in one native call
(the same id, shard and bytes; ``None`` where Python must decide), or ``None``."""
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")


class _ShardConstants(NamedTuple):
    module_args: list[str | bytes]
    module_prefix: bytes
    """``module_args`` encoded once (``encoded_calls``)."""
    script_keys: list[str]
    script_args: list[bytes]


class SampleWriter:
    """Writes sample batches; one instance per store (it caches series identities)."""

    def __init__(
        self,
        *,
        redis: RedisClient,
        chunks: ChunkSettings,
        limits: LimitSettings,
        use_module: bool = True,
    ) -> None:
        self._redis: Any = redis  # the redis stubs miss RedisCluster commands
        self._pool: Any = redis.connection_pool if isinstance(redis, Redis) else None
        """A single server's pool: module calls go pre-encoded (a cluster routes by slot)."""
        self._use_module = use_module
        self._module: bool | None = None
        """Whether ``MESHFED.WRITE`` is used; ``None`` until the first write asks Redis."""
        self._chunks = chunks
        self._limits = limits
        self._keys: dict[tuple[str, tuple[tuple[str, str], ...]], SeriesKey] = {}
        self._refs: dict[SeriesLabels, tuple[str, int, bytes]] = {}
        """Per series object of ``write_series``: its id, shard and Lua entry prefix; the
        prefix leaves the labels out once the module has stored the series (``_confirm``)."""
        self._pending: dict[SeriesLabels, tuple[str, int, bytes]] = {}
        """Learned series whose entries still carry their labels: not yet seen stored."""
        self._labelled: dict[str, bytes] = {}
        """Series id -> prefix with labels, for every series sent without them: what
        ``relabel`` puts back when an entry goes to the script (the series was gone)."""
        self._prefixes: dict[str, bytes] = {}
        self.cut_failures = 0
        """Chunk cuts that failed after a successful write (retried by later writes)."""
        shards = chunks.shards
        self._cap_total = math.ceil(limits.max_series_total / shards)
        self._cap_tenant = math.ceil(limits.max_series_per_tenant / shards)
        self._shard_constants: dict[int, _ShardConstants] = {}

    def _key(self, sample: Sample) -> SeriesKey:
        cache_key = (sample.name, tuple(sample.labels.items()))
        found = self._keys.get(cache_key)
        if found is None:
            found = fast_series_key(
                sample.name,
                sample.labels,
                shards=self._chunks.shards,
                tenant_label=self._limits.tenant_label,
            )
            if len(self._keys) >= _KEY_CACHE_MAX:
                self._keys.clear()
            self._keys[cache_key] = found
        return found

    async def write(self, samples: Sequence[Sample]) -> WriteResult:
        """Store ``samples``; returns after Redis acknowledged them.

        Raises ``LimitExceededError`` for an oversized batch, ``PermanentError`` for a sample
        without a name, ``StoreUnavailableError`` when Redis does not answer.
        """
        self._check_size(len(samples))
        groups: dict[str, tuple[SeriesKey, list[int], list[float]]] = {}
        for sample in samples:
            key = self._key(sample)
            group = groups.get(key.series_id)
            if group is None:
                group = groups[key.series_id] = (key, [], [])
            group[1].append(sample.timestamp_ms)
            group[2].append(sample.value)
        ignored = conflicts = 0
        entries: list[tuple[SeriesKey, bytes]] = []
        for key, raw_ts, raw_values in groups.values():
            timestamps, values, n_ignored, n_conflicts = sorted_unique(raw_ts, raw_values)
            ignored += n_ignored
            conflicts += n_conflicts
            entries.append((key, encode_records(timestamps, bits_from_values(values))))
        stored = await self._append(entries)
        return stored + WriteResult(duplicates_ignored=ignored, duplicate_conflicts=conflicts)

    async def write_series(self, batch: SeriesBatch) -> WriteResult:
        """Store a columnar batch; same contract as :meth:`write`, work per series."""
        self._check_size(len(batch))
        infos = derived_per_series(self._refs, batch.series, self._learn)
        ts, vs, o = batch.timestamps, batch.values, batch.offsets
        blobs, ignored, conflicts = pack_native(infos, o, ts, vs, shards=self._chunks.shards), 0, 0
        if blobs is None:  # a series twice, or a run to sort: Python packs it
            per_shard, ignored, conflicts = pack_python(infos, o, ts, vs)
            blobs = shard_calls(per_shard)
        clean: set[int] | None = set() if self._pending else None
        stored = await self._write_calls(blobs, clean)
        if clean:
            self._confirm(batch.series, clean)
        if ignored or conflicts:
            return stored + WriteResult(duplicates_ignored=ignored, duplicate_conflicts=conflicts)
        return stored

    def _confirm(self, series: Sequence[SeriesLabels], clean: set[int]) -> None:
        """Learned series of a write whose shard's calls stored every entry exist in Redis
        now: their next entries leave the labels out (``unlabelled``)."""
        pending, refs = self._pending, self._refs
        for ref in series:
            info = pending.get(ref)
            if info is not None and info[1] in clean:
                del pending[ref]
                sid, shard, prefix = info
                self._labelled[sid] = prefix
                refs[ref] = (sid, shard, unlabelled(prefix))

    def _learn(self, ref: SeriesLabels) -> tuple[str, int, bytes]:
        shards, tenant_label = self._chunks.shards, self._limits.tenant_label
        info = None
        if _native_entry is not None and type(ref.labels) is dict:
            info = _native_entry(ref.name, ref.labels, shards, tenant_label)
        if info is None:  # no native module, or labels that JSON escapes: Python decides
            key = fast_series_key(ref.name, ref.labels, shards=shards, tenant_label=tenant_label)
            prefix = self._prefixes.get(key.series_id) or self._prefix(key)
            info = (key.series_id, key.shard, prefix)
        if len(self._refs) >= _KEY_CACHE_MAX:
            self._refs.clear()
            self._pending.clear()
            self._labelled.clear()
        self._refs[ref] = info
        if self._module is not False:
            self._pending[ref] = info
        return info

    def _check_size(self, n: int) -> None:
        if n > self._limits.max_batch_samples:
            raise LimitExceededError(
                f"batch of {n} samples exceeds limits.max_batch_samples"
                f" ({self._limits.max_batch_samples}); send smaller batches"
            )

    async def _append(self, entries: list[tuple[SeriesKey, bytes]]) -> WriteResult:
        prefixes = self._prefixes
        per_shard: PerShard = {}
        for key, records in entries:
            prefix = prefixes.get(key.series_id) or self._prefix(key)
            add(per_shard, key.shard, prefix, records)
        return await self._send(per_shard)

    async def _send(self, per_shard: PerShard) -> WriteResult:
        """One call per shard (and per ``SERIES_PER_CALL`` series); then cut full heads."""
        return await self._write_calls(shard_calls(per_shard))

    async def _write_calls(
        self, blobs: list[tuple[int, bytes]], clean: set[int] | None = None
    ) -> WriteResult:
        """Store one argument per shard: through the Redis module where it is loaded (the
        entries it leaves go to the script), else through the write script; then cut.
        ``clean`` gets the shards whose calls the module stored whole (nothing left over,
        no series refused): every series of theirs exists now."""
        if self._module is None:
            with unavailable_on_redis_errors("write_samples"):
                self._module = self._use_module and await module_loaded(self._redis)
        if not self._module:
            # Series learnt before the first write asked Redis wait for a confirmation that
            # only the module gives: without it, nothing is left out, so nothing waits.
            self._pending.clear()
            return await self._write_script(blobs)
        with unavailable_on_redis_errors("write_samples"):
            replies = await self._module_calls(blobs)
        result = WriteResult()
        heads: list[tuple[str, bytes]] = []
        leftover: list[tuple[int, bytes]] = []
        dirty: set[int] = set()
        for (shard, blob), reply in zip(blobs, replies, strict=True):
            if isinstance(reply, rexc.ResponseError) and cannot_run_write(reply):
                # A server (a cluster node) without the module, or with an earlier version's
                # (no `last_lags` argument): that call wrote nothing, the script stores all
                # of it; later writes use the script everywhere.
                if self._module:
                    log.warning(
                        "a Redis server has no meshfed module, or an earlier version's (restart"
                        " it to load this one's); using the write script: %s",
                        reply,
                    )
                self._module = False
                self._pending.clear()
                self._refs.clear()  # learned again, with labels: the script needs them
                leftover.append((shard, blob))
                dirty.add(shard)
                continue
            if isinstance(reply, Exception):
                raise reply
            read = read_reply(blob, reply)
            result += read.stored
            heads.extend(read.heads)
            if read.leftover:
                leftover.append((shard, read.leftover))
            if read.leftover or read.stored.series_refused:
                dirty.add(shard)
            elif clean is not None:
                clean.add(shard)
        if clean:
            clean -= dirty
        if leftover:
            result += await self._write_script(leftover)
        if heads:
            await self.cut(heads, force=False)
        return result

    async def _module_calls(self, blobs: list[tuple[int, bytes]]) -> list[Any]:
        """One ``MESHFED.WRITE`` per (shard, batch), in one round trip per server; replies
        in order, error replies as values."""
        if self._pool is not None:
            calls = [(self._constants(shard).module_prefix, blob) for shard, blob in blobs]
            return await send_calls(self._pool, calls)
        pipe = self._redis.pipeline(transaction=False)
        for shard, blob in blobs:
            pipe.execute_command(*self._constants(shard).module_args, blob)
        replies: list[Any] = await pipe.execute(raise_on_error=False)
        return replies

    async def _write_script(self, blobs: list[tuple[int, bytes]]) -> WriteResult:
        """Run the write script once per (shard, argument); then cut the full heads."""
        calls = []
        for shard, blob in blobs:
            constants = self._constants(shard)
            script_keys, args = constants.script_keys, constants.script_args
            calls.append((script_keys, [*args, self._with_labels(blob)]))
        with unavailable_on_redis_errors("write_samples"):
            replies = await run_pipelined(self._redis, WRITE, calls)
        result = WriteResult()
        heads: list[tuple[str, bytes]] = []
        for reply in replies:
            assert isinstance(reply, list)
            result += WriteResult(*(int(x) for x in reply[:7]))
            heads.extend(zip((x.decode() for x in reply[7::2]), reply[8::2], strict=True))
        if heads:
            await self.cut(heads, force=False)
        return result

    def _with_labels(self, blob: bytes) -> bytes:
        """``blob`` fit for the script: the labels back in entries sent without them (a
        series the module found gone, or a server that lost its module)."""
        if not self._labelled:
            return blob
        try:
            return relabel(blob, self._labelled)
        except KeyError as exc:  # forgotten (the caches were full) while this write ran
            raise StoreUnavailableError(
                f"series {exc} was sent without labels and is no longer known; the sender's"
                " retry sends them again"
            ) from exc

    def _prefix(self, key: SeriesKey) -> bytes:
        """The constant part of a series' entry in the Lua argument (see ``WRITE_LUA``)."""
        sid, tenant = key.series_id.encode(), key.tenant.encode()
        prefix = b"".join(
            (
                _U16.pack(len(sid)),
                sid,
                _U32.pack(len(tenant)),
                tenant,
                _U32.pack(len(key.labels_json)),
                key.labels_json,
            )
        )
        if len(self._prefixes) >= _KEY_CACHE_MAX:
            self._prefixes.clear()
        self._prefixes[key.series_id] = prefix
        return prefix

    def _constants(self, shard: int) -> _ShardConstants:
        """What every write call of ``shard`` sends besides its batch, made once per shard:
        the module command with its arguments, and the write script's KEYS and constant ARGV
        (see ``WRITE_LUA``; the module takes the same), encoded as redis-py would, so a
        call sends them as they are."""
        found = self._shard_constants.get(shard)
        if found is None:
            script_keys, constant = write_arguments(
                shard,
                cap_total=self._cap_total,
                cap_tenant=self._cap_tenant,
                max_samples=self._chunks.max_samples,
                max_span_ms=self._chunks.max_span_ms,
            )
            args = [a if isinstance(a, bytes) else str(a).encode() for a in constant]
            command = module_args(script_keys, args)
            found = _ShardConstants(command, encode_prefix(command), script_keys, args)
            self._shard_constants[shard] = found
        return found

    async def cut(self, heads: Sequence[tuple[str, bytes]], *, force: bool) -> int:
        """Move full (or, with ``force``, all) head samples into chunks; returns cuts made."""
        calls: list[tuple[list[str], list[object]]] = []
        for series_id, head in heads:
            consumed, pieces = split_head(
                head,
                max_samples=self._chunks.max_samples,
                max_span_ms=self._chunks.max_span_ms,
                force=force,
            )
            if not pieces:
                continue
            shard = int(series_id) % self._chunks.shards
            args: list[object] = [series_id, consumed, head[:RECORD_SIZE]]
            for score, blob in pieces:
                args.extend((score, blob))
            head_keys = [
                keys.head_key(shard, series_id),
                keys.chunks_key(shard, "raw", series_id),
                keys.series_last_key(shard),
            ]
            calls.append((head_keys, args))
        try:
            with unavailable_on_redis_errors("cut chunks"):
                done = await run_pipelined(self._redis, CUT, calls)
        except StoreUnavailableError:
            # The samples are stored in the heads; the next write or compaction cuts again.
            self.cut_failures += 1
            log.warning("could not cut %d heads into chunks; will retry", len(calls))
            return 0
        return sum(1 for x in done if x == 1)

"""Packing a sample batch into the write script's arguments, one per shard call.

Per series the write script (``WRITE_LUA``) takes a constant prefix (id, tenant, labels),
the ``>I`` length of its records and the 16-byte records (``>q`` timestamp, ``>d`` value
bits), in time order without repeats. ``pack_native`` does it for the usual batch (each
series once, timestamps increasing) in one call of ``meshfed_native.pack_series``, which
also tells whether a series has several runs; ``pack_distinct`` and ``pack_grouped`` are
the Python paths: the reference the native one is tested against, the path for batches it
refuses (a series twice, unsorted or repeated timestamps, which they sort and de-duplicate)
and the whole path where the module is not installed. All of them give the same bytes.

A prefix may leave the labels out (length 0, ``unlabelled``) for a series Redis has
stored: only the module takes such entries (it leaves one whose series is gone, as it
leaves an escaped one), and ``relabel`` puts the labels back into any that go to the script.
"""

from __future__ import annotations

import operator
import struct
from collections.abc import Callable, Mapping
from itertools import islice

from collectors.store.chunks import (
    RECORD_SIZE,
    bits_from_values,
    encode_records,
    native_function,
)

SERIES_PER_CALL = 1_000
"""Series per Lua call: bounds how long one call blocks Redis."""
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_NO_LABELS = _U32.pack(0)
_LENGTHS_N = 4096
_LENGTHS = [_U32.pack(n) for n in range(_LENGTHS_N)]
"""Pre-packed record lengths (most series bring one record: 16 bytes)."""

Info = tuple[str, int, bytes]
"""Per run: the series id, its shard and its prefix."""


def unlabelled(prefix: bytes) -> bytes:
    """``prefix`` with the labels left out (length 0): what a series Redis has stored needs.
    The labels JSON is most of an entry (~100 of ~140 bytes); without it Redis parses, and
    its AOF writes, a third of the bytes per known sample."""
    tenant_at = 2 + _U16.unpack_from(prefix)[0]
    labels_at = tenant_at + 4 + _U32.unpack_from(prefix, tenant_at)[0]
    return prefix[:labels_at] + _NO_LABELS


def relabel(blob: bytes, labelled: Mapping[str, bytes]) -> bytes:
    """``blob`` with the labels back in every entry that left them out: the write script
    creates a series from its entry, so it never gets one without. ``labelled``: series id
    -> its prefix with labels; ``KeyError`` for an id it lacks."""
    parts: list[bytes] = []
    pos, end = 0, len(blob)
    while pos < end:
        tenant_at = pos + 2 + _U16.unpack_from(blob, pos)[0]
        labels_at = tenant_at + 4 + _U32.unpack_from(blob, tenant_at)[0]
        records_at = labels_at + 4 + _U32.unpack_from(blob, labels_at)[0]
        entry_end = records_at + 4 + _U32.unpack_from(blob, records_at)[0]
        if records_at == labels_at + 4:  # no labels
            parts.append(labelled[blob[pos + 2 : tenant_at].decode()])
            parts.append(blob[records_at:entry_end])
        else:
            parts.append(blob[pos:entry_end])
        pos = entry_end
    return b"".join(parts)


PerShard = dict[int, list[bytes]]

_native_pack: Callable[..., list[tuple[int, bytes]] | None] | None = native_function("pack_series")


def pack_native(
    infos: list[Info], o: list[int], ts: list[int], vs: list[float], *, shards: int
) -> list[tuple[int, bytes]] | None:
    """(shard, argument) per call for runs of distinct series, by ``meshfed_native``;
    ``None`` where it is not installed, a series has several runs (``pack_grouped`` merges
    them) or a run must be sorted (``pack_distinct`` does it)."""
    if _native_pack is None:
        return None
    try:
        return _native_pack(infos, o, ts, vs, shards, SERIES_PER_CALL)
    except OverflowError:  # a timestamp beyond int64: Python's struct judges it
        return None


def pack_python(
    infos: list[Info], o: list[int], ts: list[int], vs: list[float]
) -> tuple[PerShard, int, int]:
    """The Python packing of any batch: a series in several runs is merged first."""
    if len({info[0] for info in infos}) < len(infos):
        return pack_grouped(infos, o, ts, vs)
    return pack_distinct(infos, o, ts, vs)


def pack_distinct(
    infos: list[Info], o: list[int], ts: list[int], vs: list[float]
) -> tuple[PerShard, int, int]:
    """Runs of distinct series -> (parts per shard, repeats ignored, conflicting repeats)."""
    records = encode_records(ts, bits_from_values(vs))
    per_shard: PerShard = {}
    ignored = conflicts = 0
    for i, (_, shard, prefix) in enumerate(infos):
        a, b = o[i], o[i + 1]
        if b - a == 1 or _increasing(ts[a:b]):
            recs = records[RECORD_SIZE * a : RECORD_SIZE * b]
        else:
            recs, n_ignored, n_conflicts = _sorted_records(ts[a:b], vs[a:b])
            ignored += n_ignored
            conflicts += n_conflicts
        add(per_shard, shard, prefix, recs)
    return per_shard, ignored, conflicts


def pack_grouped(
    infos: list[Info], o: list[int], ts: list[int], vs: list[float]
) -> tuple[PerShard, int, int]:
    """Like ``pack_distinct`` when a series has several runs: they are merged first."""
    records = encode_records(ts, bits_from_values(vs))
    per_shard: PerShard = {}
    ignored = conflicts = 0
    groups: dict[str, tuple[int, bytes, list[int]]] = {}
    for i, (sid, shard, prefix) in enumerate(infos):
        group = groups.get(sid)
        if group is None:
            groups[sid] = (shard, prefix, [i])
        else:
            group[2].append(i)
    for shard, prefix, runs in groups.values():
        raw_ts = [t for i in runs for t in ts[o[i] : o[i + 1]]]
        if _increasing(raw_ts):
            recs = b"".join([records[RECORD_SIZE * o[i] : RECORD_SIZE * o[i + 1]] for i in runs])
        else:
            raw_values = [v for i in runs for v in vs[o[i] : o[i + 1]]]
            recs, n_ignored, n_conflicts = _sorted_records(raw_ts, raw_values)
            ignored += n_ignored
            conflicts += n_conflicts
        add(per_shard, shard, prefix, recs)
    return per_shard, ignored, conflicts


def shard_calls(per_shard: PerShard) -> list[tuple[int, bytes]]:
    """(shard, the write script's argument) per call: shards ascending, each shard's series in
    the order added, at most ``SERIES_PER_CALL`` series per call."""
    step = 3 * SERIES_PER_CALL
    return [
        (shard, b"".join(parts[i : i + step]))
        for shard, parts in sorted(per_shard.items())
        for i in range(0, len(parts), step)
    ]


def add(per_shard: PerShard, shard: int, prefix: bytes, records: bytes) -> None:
    """Append one series' entry (see ``WRITE_LUA``) to its shard's parts."""
    n = len(records)
    parts = per_shard.get(shard)
    if parts is None:
        parts = per_shard[shard] = []
    parts += (prefix, _LENGTHS[n] if n < _LENGTHS_N else _U32.pack(n), records)


def _sorted_records(timestamps: list[int], values: list[float]) -> tuple[bytes, int, int]:
    """One series' samples sorted and de-duplicated, as records; and what was dropped."""
    stamps, kept, ignored, conflicts = sorted_unique(timestamps, values)
    return encode_records(stamps, bits_from_values(kept)), ignored, conflicts


def _increasing(timestamps: list[int]) -> bool:
    """Strictly increasing (sorted, no repeats): then records go to Redis as they are."""
    return all(map(operator.lt, timestamps, islice(timestamps, 1, None)))


def sorted_unique(
    timestamps: list[int], values: list[float]
) -> tuple[list[int], list[float], int, int]:
    """Sort one series' samples by time; drop repeats (ignored if same bits, else conflicts)."""
    if _increasing(timestamps):
        return timestamps, values, 0, 0
    order = sorted(range(len(timestamps)), key=timestamps.__getitem__)
    out_ts: list[int] = []
    out_values: list[float] = []
    ignored = conflicts = 0
    for i in order:
        if out_ts and out_ts[-1] == timestamps[i]:
            if bits_from_values([values[i]]) == bits_from_values([out_values[-1]]):
                ignored += 1
            else:
                conflicts += 1
            continue
        out_ts.append(timestamps[i])
        out_values.append(values[i])
    return out_ts, out_values, ignored, conflicts

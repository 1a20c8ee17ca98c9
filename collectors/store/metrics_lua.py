"""Server-side scripts of the metrics store, and how they are called.

Why Lua: one script call per shard writes a whole batch atomically — new series and their
index entries, order checks, head appends — in one round trip, which a command per sample
never could. Scripts never build key names of their own: they get the prefixes made by
``collectors.store.keys`` and append a series id, label name or value.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.exceptions as rexc

from collectors.store import keys

# KEYS[1] series table of the shard. ARGV: 1 all, 2 last, 3 first, 4 tenants, 5 stats,
# 6 names, 7 values prefix, 8 postings prefix, 9 head prefix, 10 cap total, 11 cap tenant,
# 12 max samples, 13 max span, 14 the shard's ``last_lags`` key (set when ``last`` entries
# may lag their heads), 15 the series: per series ``>H`` id length, id, ``>I4``
# tenant length, tenant, ``>I4`` labels JSON length, labels JSON, ``>I4`` records length,
# head records (one argument for the whole call: the client packs and Redis parses one
# bulk string instead of four per series; labels are only read out for a new series).
# Each series id appears at most once per call (the client groups by series).
# Returns {accepted, duplicates ignored, out of order, conflicting duplicates, over limit,
# series created, series refused, id, head, id, head...} — the heads that need a cut.
# Refused new series are also counted in the shard's stats HASH, in total
# (``series_refused``, ``samples_over_limit``) and per reason (the cap that refused them,
# ``max_series_total`` first) and tenant: ``refused_series|<reason>|<tenant>`` and
# ``refused_samples|<reason>|<tenant>`` (read by ``collectors.store.cardinality``).
#
# Why this shape: every redis.call costs about a microsecond of glue besides its work, so
# the only per-series call is the head APPEND; the ``last`` records are read with HMGET and
# written with HSET in slices for the whole call, and a new series' index entries are
# collected and written once per call, postings too: one SADD per label pair of the call,
# with every new series that has it (``job``, ``cluster``... are shared by many). A
# ``last`` entry is 24 bytes: the last record (timestamp, value) and the head's first
# timestamp, which the span check needs; keeping it there instead of reading the head's
# first bytes saved ~1 us of Redis CPU per series (a fifth of the write at 10,000 series).
# The cut script updates it when it leaves records in the head. Entries written by older
# versions have 16 bytes; for them the head is read once, and the append rewrites them. A
# series exists iff it is in ``all``; every series in ``all`` has a ``last`` entry (written
# with its first sample, removed with it). The write module leaves an entry behind while
# the head holds records (the head ends with the last record) and then sets ``last_lags``:
# with it set, this script reads the tail of each known series' head (one GETRANGE per
# series: the fallback pays it only where the module has written).
WRITE_LUA = r"""
local series_key = KEYS[1]
local all_key, last_key, first_key = ARGV[1], ARGV[2], ARGV[3]
local tenants_key, stats_key, names_key = ARGV[4], ARGV[5], ARGV[6]
local vals_p, post_p, head_p = ARGV[7], ARGV[8], ARGV[9]
local cap_total, cap_tenant = tonumber(ARGV[10]), tonumber(ARGV[11])
local max_n, max_span = tonumber(ARGV[12]), tonumber(ARGV[13])
local lags = redis.call('EXISTS', ARGV[14]) == 1
local blob = ARGV[15]
local SLICE = 500
local function each_slice(items, width, fn)
  for i = 1, #items, width do fn(unpack(items, i, math.min(i + width - 1, #items))) end
end
local sids, tenants, lposs, llens, recss = {}, {}, {}, {}, {}
local m, pos, size = 0, 1, #blob
while pos <= size do
  local sid, tenant, llen, lpos = struct.unpack('>Hc0I4c0I4', blob, pos)
  m = m + 1
  sids[m], tenants[m], lposs[m], llens[m] = sid, tenant, lpos, llen
  recss[m], pos = struct.unpack('>I4c0', blob, lpos + llen)
end
local lasts = {}
for i = 1, m, SLICE do
  local got = redis.call('HMGET', last_key, unpack(sids, i, math.min(i + SLICE - 1, m)))
  for k = 1, #got do lasts[i + k - 1] = got[k] end
end
if lags then
  for i = 1, m do
    local last = lasts[i]
    if last then
      local tail = redis.call('GETRANGE', head_p .. sids[i], -16, -1)
      if #tail == 16 then lasts[i] = tail .. string.sub(last, 17, 24) end
    end
  end
end
local accepted, ignored, ooo, conflict, over, created, refused = 0, 0, 0, 0, 0, 0, 0
local out, total, in_tenant, tenant_added, refusals = {}, nil, {}, {}, {}
local new_all, new_series, new_first, new_last, new_values = {}, {}, {}, {}, {}
local new_postings = {}
for i = 1, m do
  local sid, recs, last = sids[i], recss[i], lasts[i]
  local n = #recs / 16
  if not last and redis.call('SISMEMBER', all_key, sid) == 0 then
    local tenant = tenants[i]
    if total == nil then total = redis.call('SCARD', all_key) end
    if in_tenant[tenant] == nil then
      in_tenant[tenant] = tonumber(redis.call('HGET', tenants_key, tenant) or '0')
    end
    if total >= cap_total or in_tenant[tenant] >= cap_tenant then
      over = over + n
      refused = refused + 1
      local why = 'max_series_per_tenant'
      if total >= cap_total then why = 'max_series_total' end
      local k = why .. '|' .. tenant
      local r = refusals[k]
      if r == nil then
        r = {0, 0}
        refusals[k] = r
      end
      r[1], r[2] = r[1] + 1, r[2] + n
      n = 0
    else
      total = total + 1
      created = created + 1
      in_tenant[tenant] = in_tenant[tenant] + 1
      tenant_added[tenant] = (tenant_added[tenant] or 0) + 1
      local labels = string.sub(blob, lposs[i], lposs[i] + llens[i] - 1)
      new_all[#new_all + 1] = sid
      new_series[#new_series + 1] = sid
      new_series[#new_series + 1] = labels
      new_first[#new_first + 1] = sid
      new_first[#new_first + 1] = string.sub(recs, 1, 8)
      local pairs_ = cjson.decode(labels)
      for j = 1, #pairs_, 2 do
        local name, value = pairs_[j], pairs_[j + 1]
        local posting = post_p .. name .. '\0' .. value
        local members = new_postings[posting]
        if members == nil then
          members = {}
          new_postings[posting] = members
        end
        members[#members + 1] = sid
        local values = new_values[name]
        if values == nil then
          values = {}
          new_values[name] = values
        end
        values[value] = true
      end
    end
  end
  if n > 0 then
    local skip = 0
    if last then
      local last_ts = struct.unpack('>i8', last)
      local last_value = string.sub(last, 9, 16)
      while skip < n do
        local off = skip * 16
        local ts = struct.unpack('>i8', recs, off + 1)
        if ts > last_ts then break end
        if ts < last_ts then
          ooo = ooo + 1
        elseif string.sub(recs, off + 9, off + 16) == last_value then
          ignored = ignored + 1
        else
          conflict = conflict + 1
        end
        skip = skip + 1
      end
    end
    if skip < n then
      local head = head_p .. sid
      local data = recs
      if skip > 0 then data = string.sub(recs, skip * 16 + 1) end
      local count = redis.call('APPEND', head, data) / 16
      local head_first
      if count == n - skip then
        head_first = string.sub(data, 1, 8)
      elseif last and #last >= 24 then
        head_first = string.sub(last, 17, 24)
      else
        head_first = redis.call('GETRANGE', head, 0, 7)
      end
      new_last[#new_last + 1] = sid
      new_last[#new_last + 1] = string.sub(recs, -16) .. head_first
      accepted = accepted + n - skip
      local cut = count >= max_n
      if not cut and count > 1 then
        local first_ts = struct.unpack('>i8', head_first)
        cut = struct.unpack('>i8', recs, #recs - 15) - first_ts >= max_span
      end
      if cut then
        out[#out + 1] = sid
        out[#out + 1] = redis.call('GET', head)
      end
    end
  end
end
local function hset(key) return function(...) redis.call('HSET', key, ...) end end
each_slice(new_all, SLICE, function(...) redis.call('SADD', all_key, ...) end)
each_slice(new_series, 2 * SLICE, hset(series_key))
each_slice(new_first, 2 * SLICE, hset(first_key))
each_slice(new_last, 2 * SLICE, hset(last_key))
for posting, members in pairs(new_postings) do
  each_slice(members, SLICE, function(...) redis.call('SADD', posting, ...) end)
end
for tenant, k in pairs(tenant_added) do redis.call('HINCRBY', tenants_key, tenant, k) end
local names = {}
for name, set in pairs(new_values) do
  names[#names + 1] = name
  local values = {}
  for value in pairs(set) do values[#values + 1] = value end
  each_slice(values, SLICE, function(...) redis.call('SADD', vals_p .. name, ...) end)
end
each_slice(names, SLICE, function(...) redis.call('SADD', names_key, ...) end)
if refused > 0 then
  redis.call('HINCRBY', stats_key, 'series_refused', refused)
  redis.call('HINCRBY', stats_key, 'samples_over_limit', over)
  for k, r in pairs(refusals) do
    redis.call('HINCRBY', stats_key, 'refused_series|' .. k, r[1])
    redis.call('HINCRBY', stats_key, 'refused_samples|' .. k, r[2])
  end
end
local result = {accepted, ignored, ooo, conflict, over, created, refused}
for k = 1, #out do result[#result + 1] = out[k] end
return result
"""

# KEYS[1] head, KEYS[2] raw chunks, KEYS[3] the shard's last records. ARGV: 1 series id,
# 2 bytes consumed, 3 the head's first record as read, then score, chunk pairs. Cuts only if
# the head still starts with that record (a concurrent cut would have removed it; appends
# never change a prefix). The series' last entry is written afresh from the head's tail
# (the write module may have left it behind while the head held records), with the first
# timestamp of what stays in the head, which the write script's span check reads; a head
# cut to nothing is deleted, and the entry is then the series' only last record. Returns 1
# or 0.
CUT_LUA = r"""
local head, sid = KEYS[1], ARGV[1]
local consumed = tonumber(ARGV[2])
if redis.call('STRLEN', head) < consumed then return 0 end
if redis.call('GETRANGE', head, 0, 15) ~= ARGV[3] then return 0 end
for i = 4, #ARGV, 2 do
  redis.call('ZADD', KEYS[2], ARGV[i], ARGV[i + 1])
end
local tail = redis.call('GETRANGE', head, -16, -1)
local rest = redis.call('GETRANGE', head, consumed, -1)
if rest == '' then
  redis.call('DEL', head)
  rest = tail
else
  redis.call('SET', head, rest)
end
if redis.call('HEXISTS', KEYS[3], sid) == 1 then
  redis.call('HSET', KEYS[3], sid, tail .. string.sub(rest, 1, 8))
end
return 1
"""

# KEYS[1] series table, KEYS[2] all, KEYS[3] last, KEYS[4] first, KEYS[5] tenants,
# KEYS[6] head, KEYS[7..] chunk ZSETs of every tier, then watermark HASHes (count in ARGV[3]).
# ARGV: 1 series id, 2 tenant, 3 number of chunk keys, 4 postings prefix, 5 values prefix,
# 6 names key, then per chunk key: min score kept. Drops chunks wholly older than their
# tier's floor; when nothing is left, removes the series from the index. Returns 1 if the
# series was removed.
TRIM_LUA = r"""
local sid, tenant = ARGV[1], ARGV[2]
local nchunks = tonumber(ARGV[3])
local left = redis.call('EXISTS', KEYS[6])
for i = 1, nchunks do
  redis.call('ZREMRANGEBYSCORE', KEYS[6 + i], '-inf', '(' .. ARGV[6 + i])
  left = left + redis.call('EXISTS', KEYS[6 + i])
end
if left > 0 then return 0 end
local labels = redis.call('HGET', KEYS[1], sid)
if not labels then return 0 end
local pairs_ = cjson.decode(labels)
for j = 1, #pairs_, 2 do
  local name, value = pairs_[j], pairs_[j + 1]
  local posting = ARGV[4] .. name .. '\0' .. value
  redis.call('SREM', posting, sid)
  if redis.call('SCARD', posting) == 0 then
    redis.call('SREM', ARGV[5] .. name, value)
    if redis.call('SCARD', ARGV[5] .. name) == 0 then redis.call('SREM', ARGV[6], name) end
  end
end
redis.call('HDEL', KEYS[1], sid)
redis.call('SREM', KEYS[2], sid)
redis.call('HDEL', KEYS[3], sid)
redis.call('HDEL', KEYS[4], sid)
if redis.call('HINCRBY', KEYS[5], tenant, -1) <= 0 then redis.call('HDEL', KEYS[5], tenant) end
for i = 7 + nchunks, #KEYS do redis.call('HDEL', KEYS[i], sid) end
return 1
"""


def write_arguments(
    shard: int, *, cap_total: int, cap_tenant: int, max_samples: int, max_span_ms: int
) -> tuple[list[str], list[object]]:
    """``WRITE_LUA``'s KEYS and constant ARGV (all but the batch) for ``shard``, in its order;
    ``MESHFED.WRITE`` takes the same arguments."""
    return [keys.series_labels_key(shard)], [
        keys.series_all_key(shard),
        keys.series_last_key(shard),
        keys.series_first_key(shard),
        keys.tenant_series_key(shard),
        keys.metrics_stats_key(shard),
        keys.label_names_key(shard),
        keys.label_values_prefix(shard),
        keys.postings_prefix(shard),
        keys.head_prefix(shard),
        cap_total,
        cap_tenant,
        max_samples,
        max_span_ms,
        keys.series_last_lags_key(shard),
    ]


@dataclass(frozen=True, slots=True)
class Script:
    """A Lua script called by SHA, falling back to its text after a server restart."""

    source: str
    sha: str = field(init=False)
    """SHA1 of ``source``, computed once: every write sends it (per call, it showed in profiles)."""

    def __post_init__(self) -> None:
        digest = hashlib.sha1(self.source.encode(), usedforsecurity=False).hexdigest()
        object.__setattr__(self, "sha", digest)

    def queue(self, pipe: object, keys: Sequence[str], args: Sequence[object]) -> None:
        """Add an EVALSHA to a pipeline (redis.asyncio Pipeline or ClusterPipeline)."""
        pipe.execute_command(  # type: ignore[attr-defined]
            "EVALSHA", self.sha, len(keys), *keys, *args
        )

    async def call(self, client: Any, keys: Sequence[str], args: Sequence[object]) -> object:
        try:
            return await client.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)
        except rexc.NoScriptError:
            return await client.execute_command("EVAL", self.source, len(keys), *keys, *args)


WRITE = Script(WRITE_LUA)
CUT = Script(CUT_LUA)
TRIM = Script(TRIM_LUA)


async def run_pipelined(
    client: Any, script: Script, calls: Sequence[tuple[Sequence[str], Sequence[object]]]
) -> list[object]:
    """Run ``script`` once per (keys, args) in one pipeline; retry NOSCRIPT ones with EVAL.

    Results are returned in order; a transient failure of any call is raised (the caller
    maps it to ``StoreUnavailableError``), other per-call errors too.
    """
    if not calls:
        return []
    pipe: Any = client.pipeline(transaction=False)
    for call_keys, args in calls:
        script.queue(pipe, call_keys, args)
    results: list[object] = list(await pipe.execute(raise_on_error=False))
    missing = [i for i, r in enumerate(results) if isinstance(r, rexc.NoScriptError)]
    if missing:
        pipe = client.pipeline(transaction=False)
        for i in missing:
            call_keys, args = calls[i]
            pipe.execute_command("EVAL", script.source, len(call_keys), *call_keys, *args)
        for i, value in zip(missing, await pipe.execute(raise_on_error=False), strict=True):
            results[i] = value
    for value in results:
        if isinstance(value, Exception):
            raise value
    return results

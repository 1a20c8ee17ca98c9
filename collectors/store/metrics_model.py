"""Pure parts of the metrics store: series identity, matcher plans, tier segments, results.

Kept apart from the Redis code so that what decides *which* keys a query touches can be unit
tested exhaustively without a server.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from collectors._core.errors import PermanentError
from collectors._core.model import METRIC_NAME_LABEL
from collectors.promql.source import LabelMatcher, MatchType
from collectors.store.config import TierSettings

EMPTY_MATCHER_MESSAGE = "vector selector must contain at least one non-empty matcher"


@dataclass(frozen=True, slots=True)
class SeriesKey:
    """A series' identity: canonical labels JSON (``[name, value, ...]`` sorted) and its id."""

    labels_json: bytes
    series_id: str
    shard: int
    tenant: str


def canonical_labels(name: str, labels: Mapping[str, str]) -> list[tuple[str, str]]:
    """Sorted label pairs with ``__name__``; empty values dropped (Prometheus: empty = absent)."""
    pairs = {k: v for k, v in labels.items() if v and k != METRIC_NAME_LABEL}
    if not name:
        raise PermanentError("a sample needs a metric name")
    for key in pairs:
        if not key or "\x00" in key:
            raise PermanentError(f"invalid label name {key!r} in metric {name!r}")
    pairs[METRIC_NAME_LABEL] = name
    return sorted(pairs.items())


def series_key(
    name: str, labels: Mapping[str, str], *, shards: int, tenant_label: str
) -> SeriesKey:
    """The identity of the series ``name{labels}``: a 63-bit blake2b of its canonical labels."""
    pairs = canonical_labels(name, labels)
    flat = [x for pair in pairs for x in pair]
    blob = json.dumps(flat, ensure_ascii=False, separators=(",", ":")).encode()
    number = int.from_bytes(hashlib.blake2b(blob, digest_size=8).digest(), "big") >> 1
    tenant = labels.get(tenant_label, "")
    return SeriesKey(blob, str(number), number % shards, tenant)


def labels_from_json(blob: bytes | str) -> dict[str, str]:
    """The label mapping stored in the series table."""
    flat = json.loads(blob)
    return dict(zip(flat[::2], flat[1::2], strict=True))


def check_selector(matchers: Sequence[LabelMatcher]) -> None:
    """Prometheus's rule: some matcher must not match the empty string."""
    if not any(not m.matches("") for m in matchers):
        raise PermanentError(EMPTY_MATCHER_MESSAGE)


def names_needing_values(matchers: Sequence[LabelMatcher]) -> list[str]:
    """Label names whose values set must be read to plan ``matchers`` (all but ``="x"``)."""
    names = {m.name for m in matchers if not (m.type is MatchType.EQUAL and m.value)}
    return sorted(names)


@dataclass(frozen=True, slots=True)
class ShardPlan:
    """Which postings one shard must read: intersect ``equal``, each ``unions`` group, and
    subtract ``excluded``. ``empty`` means no series of the shard can match."""

    equal: list[tuple[str, str]] = field(default_factory=list)
    unions: list[list[tuple[str, str]]] = field(default_factory=list)
    excluded: list[tuple[str, str]] = field(default_factory=list)
    empty: bool = False


def plan_shard(matchers: Sequence[LabelMatcher], values: Mapping[str, set[str]]) -> ShardPlan:
    """Turn matchers into posting (name, value) pairs given the shard's label values."""
    plan = ShardPlan()
    for m in matchers:
        if m.type is MatchType.EQUAL and m.value:
            plan.equal.append((m.name, m.value))
            continue
        known = values.get(m.name, set())
        if m.matches(""):
            plan.excluded.extend((m.name, v) for v in sorted(known) if not m.matches(v))
        else:
            group = [(m.name, v) for v in sorted(known) if m.matches(v)]
            if not group:
                return ShardPlan(empty=True)
            plan.unions.append(group)
    if not plan.equal and not plan.unions:
        return ShardPlan(empty=True)  # unreachable after check_selector; keeps reads bounded
    return plan


@dataclass(frozen=True, slots=True)
class Segment:
    """Read tier ``tier`` for timestamps in ``[start_ms, end_ms]``; look back ``lookback_ms``
    for chunks that start before ``start_ms`` (chunks are scored by their first sample)."""

    tier: TierSettings
    start_ms: int
    end_ms: int
    lookback_ms: int


def plan_segments(
    tiers: Sequence[TierSettings],
    floors: Mapping[str, int],
    start_ms: int,
    end_ms: int,
    *,
    max_samples: int,
    max_span_ms: int,
) -> list[Segment]:
    """Stitch tiers, oldest part first: each tier serves what finer tiers no longer keep.

    ``floors`` holds, per tier, the time before which ``compact`` last trimmed it (absent:
    never trimmed, so it still holds everything). A window above the raw floor reads raw only
    (exact results); older parts read the finest tier that still has them.
    """
    segments: list[Segment] = []
    upper = end_ms
    for tier in tiers:
        floor = floors.get(tier.name)
        lo = start_ms if floor is None else max(start_ms, floor)
        if lo <= upper:
            lookback = max_span_ms if tier.resolution_ms == 0 else tier.resolution_ms * max_samples
            segments.append(Segment(tier, lo, upper, lookback))
        if floor is None:
            break
        upper = min(upper, floor - 1)
        if upper < start_ms:
            break
    segments.reverse()
    return segments


_JSON_ESCAPED = re.compile(r'["\\\x00-\x1f]')
"""What ``json.dumps(ensure_ascii=False)`` would escape in a string."""


def fast_series_key(
    name: str, labels: Mapping[str, str], *, shards: int, tenant_label: str
) -> SeriesKey:
    """``series_key`` without ``json.dumps`` when no label needs escaping (same bytes, same id).

    ``json.dumps(..., ensure_ascii=False)`` escapes only quotes, backslashes and control
    characters; without them the canonical JSON is the values joined with ``","``.
    """
    flat = [x for pair in canonical_labels(name, labels) for x in pair]
    if _JSON_ESCAPED.search("".join(flat)):
        return series_key(name, labels, shards=shards, tenant_label=tenant_label)
    blob = ('["' + '","'.join(flat) + '"]').encode()
    number = int.from_bytes(hashlib.blake2b(blob, digest_size=8).digest(), "big") >> 1
    return SeriesKey(blob, str(number), number % shards, labels.get(tenant_label, ""))

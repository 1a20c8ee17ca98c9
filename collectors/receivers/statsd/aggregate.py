"""StatsD aggregation: per-interval partials (cheap, per receiving process) and the flush.

Two halves, both pure (no sockets, no clock: times are arguments):

- :class:`Accumulator` turns datagrams into a :class:`Partial` — counter sums, raw timer
  values, set members, gauge updates — bounded by ``max_keys`` / ``max_values`` (beyond
  them values are dropped and counted exactly). Every UDP worker process owns one and ships
  its ``take()`` to the main process once per flush; timers ship their raw values because
  exact percentiles cannot be merged from summaries.
- :class:`Aggregator` (main process) merges partials into the state the reference daemon
  keeps between flushes (gauges persist; idle counters/timers/sets are zeroed or deleted
  per ``delete_*``) and computes the flush: samples named like the reference's graphite
  backend with dots as underscores, DogStatsD tags as labels, stamped with the flush time.

With one partial per interval the result equals the reference's exactly. With several
worker partials, counters, timers and sets are still exact (up to float summation order);
gauges merge as "latest absolute set wins (CLOCK_MONOTONIC), then pending deltas", which is
exact unless two workers update the same gauge in the same interval.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from collectors._core.model import Sample
from collectors.receivers.statsd.math import label_name, metric_name, timer_stats
from collectors.receivers.statsd.protocol.events import DogEvent, ServiceCheck
from collectors.receivers.statsd.protocol.lines import (
    BadValue,
    MetricKind,
    MetricValue,
    Tags,
    parse_line,
)

MetricKey = tuple[str, Tags]
StampedKey = tuple[MetricKind, MetricKey, int]
_PARSE_CACHE_MAX = 50_000


GaugeOp = tuple[int, bool, float]
"""(CLOCK_MONOTONIC ns when received, is a delta, value) of one gauge line."""


@dataclass(slots=True)
class Partial:
    """What one process received in one interval (picklable, shipped to the main process)."""

    counters: dict[MetricKey, float] = field(default_factory=dict)
    timers: dict[MetricKey, list[float]] = field(default_factory=dict)
    timer_counts: dict[MetricKey, float] = field(default_factory=dict)
    gauges: dict[MetricKey, list[GaugeOp]] = field(default_factory=dict)
    """A gauge's lines since its last absolute value (earlier ones cannot matter)."""
    sets: dict[MetricKey, set[str]] = field(default_factory=dict)
    stamped: dict[StampedKey, float] = field(default_factory=dict)
    events: list[DogEvent | ServiceCheck] = field(default_factory=list)
    packets: int = 0
    lines: int = 0
    bad_lines: int = 0
    dropped: int = 0
    """Values refused by the memory bounds (``max_keys`` / ``max_values`` / ``max_events``)."""
    keys: int = 0
    values: int = 0


def _truthy(x: float | None) -> bool:
    """JavaScript truthiness of a gauge slot (undefined, 0 and NaN are false)."""
    return x is not None and not math.isnan(x) and x != 0


class Accumulator:
    """Datagrams -> the current :class:`Partial`; not thread-safe (one per process)."""

    def __init__(self, *, max_keys: int, max_values: int, max_events: int) -> None:
        self._max_keys = max_keys
        self._max_values = max_values
        self._max_events = max_events
        self._cache: dict[str, tuple[object, ...]] = {}
        self.partial = Partial()

    def take(self) -> Partial:
        """The interval's partial; a fresh one starts."""
        done, self.partial = self.partial, Partial()
        return done

    def ingest(self, data: bytes, now_ns: int) -> None:
        """One datagram or TCP chunk (newline separated lines)."""
        p = self.partial
        p.packets += 1
        for line in data.decode("utf-8", "replace").split("\n"):
            if line:
                self.ingest_line(line, now_ns)

    def ingest_line(self, line: str, now_ns: int) -> None:
        p = self.partial
        p.lines += 1
        items = self._cache.get(line)
        if items is None:
            items = parse_line(line)
            if len(self._cache) >= _PARSE_CACHE_MAX:
                self._cache.clear()
            self._cache[line] = items
        for item in items:
            if type(item) is MetricValue:
                self._apply(p, item, now_ns)
            elif type(item) is BadValue:
                p.bad_lines += 1
            elif len(p.events) < self._max_events:
                p.events.append(item)  # type: ignore[arg-type]
            else:
                p.dropped += 1

    def _admit(self, p: Partial, new_key: bool, values: int) -> bool:
        if (new_key and p.keys >= self._max_keys) or p.values + values > self._max_values:
            p.dropped += 1
            return False
        p.keys += new_key
        p.values += values
        return True

    def _apply(self, p: Partial, m: MetricValue, now_ns: int) -> None:
        key = (m.name, m.tags)
        kind = m.kind
        if m.timestamp_s is not None and kind in (MetricKind.COUNTER, MetricKind.GAUGE):
            skey = (kind, key, m.timestamp_s)
            old = p.stamped.get(skey)
            if old is None and not self._admit(p, True, 0):
                return
            if kind is MetricKind.COUNTER or (m.delta and _truthy(old)):
                p.stamped[skey] = (old or 0.0) + m.value
            else:
                p.stamped[skey] = m.value
        elif kind is MetricKind.COUNTER:
            count = p.counters.get(key)
            if count is None:
                if not self._admit(p, True, 0):
                    return
                count = 0.0
            elif math.isnan(count):  # the reference restarts a NaN counter at 0
                count = 0.0
            p.counters[key] = count + m.value
        elif kind is MetricKind.TIMER:
            values = p.timers.get(key)
            if values is None:
                if not self._admit(p, True, 1):
                    return
                values = p.timers[key] = []
                p.timer_counts[key] = 0.0
            elif not self._admit(p, False, 1):
                return
            values.append(m.value)
            p.timer_counts[key] += 1 / m.rate
        elif kind is MetricKind.GAUGE:
            ops = p.gauges.get(key)
            if ops is None:
                if not self._admit(p, True, 1):
                    return
                ops = p.gauges[key] = []
            elif not m.delta:
                p.values -= len(ops)
                ops.clear()
                self._admit(p, False, 1)
            elif not self._admit(p, False, 1):
                return
            ops.append((now_ns, m.delta, m.value))
        else:
            members = p.sets.get(key)
            if members is None:
                if not self._admit(p, True, 1):
                    return
                members = p.sets[key] = set()
            elif m.member not in members and not self._admit(p, False, 1):
                return
            members.add(m.member)


@dataclass(frozen=True, slots=True)
class AggregatorSettings:
    """The subset of StatsdSettings the flush needs (kept apart so this module stays pure)."""

    interval_ms: int = 10_000
    percentiles: tuple[float, ...] = (90.0,)
    delete_counters: bool = False
    delete_timers: bool = False
    delete_sets: bool = False
    delete_gauges: bool = False
    gauges_max_ttl: int = 1
    prefix_stats: str = "statsd"
    max_keys: int = 100_000


@dataclass(frozen=True, slots=True)
class FlushResult:
    samples: list[Sample]
    events: list[DogEvent | ServiceCheck]
    dropped: int
    """Values refused by the bounds this interval (workers' and the main state's)."""
    lines: int
    bad_lines: int


_KEEP_ON_DELETE = ("packets_received", "metrics_received", "bad_lines_seen")


class Aggregator:
    """The reference daemon's state between flushes, and the flush itself."""

    def __init__(self, *, settings: AggregatorSettings, resource: Mapping[str, str]) -> None:
        self._s = settings
        self._resource = dict(resource)
        prefix = settings.prefix_stats
        self._bad_key: MetricKey = (prefix + ".bad_lines_seen", ())
        self._packets_key: MetricKey = (prefix + ".packets_received", ())
        self._lines_key: MetricKey = (prefix + ".metrics_received", ())
        self.counters: dict[MetricKey, float] = dict.fromkeys(
            (self._bad_key, self._packets_key, self._lines_key), 0.0
        )
        self.timers: dict[MetricKey, list[float]] = {}
        self.timer_counts: dict[MetricKey, float] = {}
        self.gauges: dict[MetricKey, float] = {}
        self.gauge_ttl: dict[MetricKey, int] = {}
        self.sets: dict[MetricKey, set[str]] = {}
        self._stamped: dict[StampedKey, float] = {}
        self._events: list[DogEvent | ServiceCheck] = []
        self._dropped = self._lines = self._bad = 0

    def _room(self, table: Mapping[MetricKey, object], key: MetricKey) -> bool:
        if key in table or len(table) < self._s.max_keys:
            return True
        self._dropped += 1
        return False

    def merge(self, partials: Sequence[Partial]) -> None:
        """Fold the interval's partials into the state (call once per flush, all at once)."""
        for p in partials:
            self._dropped += p.dropped
            self._lines += p.lines
            self._bad += p.bad_lines
            self.counters[self._packets_key] += p.packets
            self.counters[self._lines_key] += p.lines
            self.counters[self._bad_key] += p.bad_lines
            for key, value in p.counters.items():
                if self._room(self.counters, key):
                    self.counters[key] = self.counters.get(key, 0.0) + value
            for key, values in p.timers.items():
                if self._room(self.timers, key):
                    self.timers.setdefault(key, []).extend(values)
                    self.timer_counts[key] = self.timer_counts.get(key, 0.0) + p.timer_counts[key]
            for key, members in p.sets.items():
                if self._room(self.sets, key):
                    self.sets.setdefault(key, set()).update(members)
            self._events.extend(p.events)
            for skey, value in p.stamped.items():
                self._stamped[skey] = self._stamped.get(skey, 0.0) + value
        self._merge_gauges(partials)

    def _merge_gauges(self, partials: Sequence[Partial]) -> None:
        """Replay every gauge line in receive order (one partial: exactly its arrival order)."""
        ops_by_key: dict[MetricKey, list[GaugeOp]] = {}
        for p in partials:
            for key, ops in p.gauges.items():
                ops_by_key.setdefault(key, []).extend(ops)
        for key, ops in ops_by_key.items():
            if not self._room(self.gauges, key):
                continue
            if len(partials) > 1:
                ops.sort(key=lambda op: op[0])
            value = self.gauges.get(key)
            for _, delta, number in ops:
                value = value + number if delta and _truthy(value) else number  # type: ignore[operator]
            self.gauges[key] = value  # type: ignore[assignment]
            if self._s.delete_gauges:
                self.gauge_ttl[key] = self._s.gauges_max_ttl

    def flush(self, now_ms: int) -> FlushResult:
        """The samples of this flush, then the reference's reset of idle stats."""
        samples: list[Sample] = []
        interval_s = self._s.interval_ms / 1000
        for key, value in self.counters.items():
            labels = self._labels(key[1])
            samples.append(
                Sample(metric_name("stats.counters", key[0], "count"), labels, now_ms, value)
            )
            samples.append(
                Sample(
                    metric_name("stats.counters", key[0], "rate"),
                    labels,
                    now_ms,
                    value / interval_s,
                )
            )
        for key, values in self.timers.items():
            labels = self._labels(key[1])
            stats = timer_stats(
                values, self.timer_counts[key], self._s.percentiles, self._s.interval_ms
            )
            samples.extend(
                Sample(metric_name("stats.timers", key[0], f), labels, now_ms, v)
                for f, v in stats.items()
            )
        for key, value in self.gauges.items():
            samples.append(
                Sample(metric_name("stats.gauges", key[0]), self._labels(key[1]), now_ms, value)
            )
        for key, members in self.sets.items():
            samples.append(
                Sample(
                    metric_name("stats.sets", key[0], "count"),
                    self._labels(key[1]),
                    now_ms,
                    float(len(members)),
                )
            )
        samples.extend(self._stamped_samples(interval_s))
        result = FlushResult(samples, self._events, self._dropped, self._lines, self._bad)
        self._reset()
        return result

    def _stamped_samples(self, interval_s: float) -> Iterable[Sample]:
        for (kind, key, ts), value in self._stamped.items():
            labels = self._labels(key[1])
            if kind is MetricKind.COUNTER:
                yield Sample(
                    metric_name("stats.counters", key[0], "count"), labels, ts * 1000, value
                )
                yield Sample(
                    metric_name("stats.counters", key[0], "rate"),
                    labels,
                    ts * 1000,
                    value / interval_s,
                )
            else:
                yield Sample(metric_name("stats.gauges", key[0]), labels, ts * 1000, value)

    def _labels(self, tags: Tags) -> dict[str, str]:
        labels = {label_name(k): v for k, v in tags}
        for k, v in self._resource.items():
            labels.setdefault(k, v)
        return labels

    def _reset(self) -> None:
        s = self._s
        for key in list(self.counters):
            if s.delete_counters and not any(k in key[0] for k in _KEEP_ON_DELETE):
                del self.counters[key]
            else:
                self.counters[key] = 0.0
        if s.delete_timers:
            self.timers.clear()
            self.timer_counts.clear()
        else:
            for key in self.timers:
                self.timers[key] = []
                self.timer_counts[key] = 0.0
        if s.delete_sets:
            self.sets.clear()
        else:
            for key in self.sets:
                self.sets[key] = set()
        if s.delete_gauges:
            for key in list(self.gauge_ttl):
                self.gauge_ttl[key] -= 1
                if self.gauge_ttl[key] < 1:
                    self.gauges.pop(key, None)
                    del self.gauge_ttl[key]
        self._stamped = {}
        self._events = []
        self._dropped = self._lines = self._bad = 0

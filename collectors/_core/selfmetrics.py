"""Receivers' own metrics, the same family names for every protocol (label ``receiver``).

Counted, never logged per item (STYLE rule 9). Each receiver gets a :class:`ReceiverMetrics`
bound to its name; all share one set of families on the process's registry, served at
``/metrics``.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass(frozen=True, slots=True)
class ReceiverMetricFamilies:
    """The families, created once per registry."""

    received: Counter
    stored: Counter
    rejected: Counter
    dropped: Counter
    queue_depth: Gauge
    batch_latency: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry) -> ReceiverMetricFamilies:
        return cls(
            received=Counter(
                "meshfed_receiver_received",
                "Records received (samples, spans, log records, StatsD lines).",
                ["receiver", "signal"],
                registry=registry,
            ),
            stored=Counter(
                "meshfed_receiver_stored",
                "Records the store acknowledged.",
                ["receiver", "signal"],
                registry=registry,
            ),
            rejected=Counter(
                "meshfed_receiver_rejected",
                "Records or requests refused, by reason (bad_line, too_large, unauthorized, "
                "store_unavailable, memory_limit, out_of_order, ...).",
                ["receiver", "reason"],
                registry=registry,
            ),
            dropped=Counter(
                "meshfed_receiver_dropped",
                "Records dropped without a way to tell the sender (full queues on UDP, ...).",
                ["receiver", "reason"],
                registry=registry,
            ),
            queue_depth=Gauge(
                "meshfed_receiver_queue_depth",
                "Records waiting in the receiver's bounded queue.",
                ["receiver"],
                registry=registry,
            ),
            batch_latency=Histogram(
                "meshfed_receiver_batch_latency_seconds",
                "Time from a batch being handed to the sink to the store's acknowledgement.",
                ["receiver"],
                registry=registry,
                buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            ),
        )


class ReceiverMetrics:
    """The families bound to one receiver's name."""

    def __init__(self, *, families: ReceiverMetricFamilies, receiver: str) -> None:
        self._f = families
        self.receiver = receiver

    def received(self, signal: str, n: int = 1) -> None:
        self._f.received.labels(self.receiver, signal).inc(n)

    def stored(self, signal: str, n: int = 1) -> None:
        self._f.stored.labels(self.receiver, signal).inc(n)

    def rejected(self, reason: str, n: int = 1) -> None:
        self._f.rejected.labels(self.receiver, reason).inc(n)

    def dropped(self, reason: str, n: int = 1) -> None:
        self._f.dropped.labels(self.receiver, reason).inc(n)

    def set_queue_depth(self, depth: int) -> None:
        self._f.queue_depth.labels(self.receiver).set(depth)

    def observe_batch(self, seconds: float) -> None:
        self._f.batch_latency.labels(self.receiver).observe(seconds)

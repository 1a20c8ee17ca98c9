"""Istio-standard telemetry of simulated requests, and its wire encodings. Pure.

Metrics are kept as Envoy's Istio stats filter keeps them: per label set, a counter
``istio_requests_total`` and a histogram ``istio_request_duration_milliseconds`` with
Istio's default buckets; both cumulative and monotonic for the life of the generator, so
PromQL ``rate`` and ``histogram_quantile`` read them as they read a real mesh. They are sent
over Prometheus remote_write (the label names and series names then arrive exactly as Istio's
Prometheus exposes them; OTLP would rename counters and histograms on the way in). Spans are
OTLP protobuf (one trace per simulated request, a child span per hop), access logs are
Fluentd Forward records carrying the trace id.
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

ISTIO_BUCKETS_MS = (
    0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000,
    600000, 1800000, 3600000,
)  # fmt: skip
"""Istio's default buckets of ``istio_request_duration_milliseconds``."""
REQUESTS = "istio_requests_total"
DURATION = "istio_request_duration_milliseconds"

Labels = tuple[tuple[str, str], ...]
Series = tuple[Mapping[str, str], Sequence[tuple[int, float]]]


@dataclass(frozen=True, slots=True)
class HopRecord:
    """One simulated hop (client -> server). Istio records it twice: the client's sidecar as
    ``reporter="source"`` and, when the request reached a server, the server's sidecar as
    ``reporter="destination"`` (dashboards of a service read the latter, fault-injection
    effects show only in the former: an injected abort never reaches the server, an injected
    delay is spent before it)."""

    source_workload: str
    source_namespace: str
    source_cluster: str
    destination_service: str
    """The host the client called (FQDN)."""
    destination_service_name: str
    destination_namespace: str
    destination_workload: str
    destination_version: str
    destination_cluster: str
    response_code: int
    response_flags: str
    duration_ms: float
    port: int = 9080
    injected_delay_ms: float = 0.0

    @property
    def reached_server(self) -> bool:
        """A server-side sidecar saw the request (no abort, a route and an upstream)."""
        return self.destination_workload != "unknown"

    def labels(self, reporter: str = "source") -> Labels:
        """Istio's labels as ``reporter`` records them, plus ``cluster``: the cluster whose
        proxy reported (a multicluster mesh's Prometheus per cluster adds it; the collectors
        keep a sender's ``cluster``), when known."""
        cluster = self.source_cluster if reporter == "source" else self.destination_cluster
        where = () if cluster in {"", "unknown"} else (("cluster", cluster),)
        return (
            ("reporter", reporter),
            *where,
            ("source_workload", self.source_workload),
            ("source_workload_namespace", self.source_namespace),
            ("source_app", self.source_workload),
            ("source_cluster", self.source_cluster),
            ("destination_service", self.destination_service),
            ("destination_service_name", self.destination_service_name),
            ("destination_service_namespace", self.destination_namespace),
            ("destination_workload", self.destination_workload),
            ("destination_workload_namespace", self.destination_namespace),
            ("destination_app", self.destination_service_name),
            ("destination_version", self.destination_version),
            ("destination_cluster", self.destination_cluster),
            ("response_code", str(self.response_code)),
            ("response_flags", self.response_flags),
            ("request_protocol", "http"),
            ("connection_security_policy", "unknown"),
        )


@dataclass(slots=True)
class _Histogram:
    buckets: list[int] = field(default_factory=lambda: [0] * len(ISTIO_BUCKETS_MS))
    total: float = 0.0
    count: int = 0


@dataclass(slots=True)
class MetricsBook:
    """Cumulative counters and histograms per label set."""

    requests: dict[Labels, int] = field(default_factory=dict)
    durations: dict[Labels, _Histogram] = field(default_factory=dict)
    announced: set[Labels] = field(default_factory=set)
    """Label sets already sent once."""

    def record(self, hop: HopRecord) -> None:
        self._add(hop.labels("source"), hop.duration_ms)
        if hop.reached_server:
            server_ms = max(0.0, hop.duration_ms - hop.injected_delay_ms)
            self._add(hop.labels("destination"), server_ms)

    def _add(self, labels: Labels, duration_ms: float) -> None:
        self.requests[labels] = self.requests.get(labels, 0) + 1
        h = self.durations.setdefault(labels, _Histogram())
        index = bisect.bisect_left(ISTIO_BUCKETS_MS, duration_ms)
        if index < len(h.buckets):  # beyond the last bound: only in +Inf (the count)
            h.buckets[index] += 1
        h.total += duration_ms
        h.count += 1

    def series(self, timestamp_ms: int, previous_ms: int | None = None) -> list[Series]:
        """Every series' current cumulative value at ``timestamp_ms``. A label set sent for
        the first time also gets a 0 sample at ``previous_ms`` (the last flush), so ``rate``
        counts its first requests as well (a counter's first sample is otherwise only a
        starting point)."""
        out: list[Series] = []
        for labels in sorted(self.requests):
            fresh = previous_ms is not None and labels not in self.announced
            self.announced.add(labels)
            base = dict(labels)
            h = self.durations[labels]

            def add(
                extra: dict[str, str],
                value: float,
                fresh: bool = fresh,
                base: dict[str, str] = base,
            ) -> None:
                samples = [(timestamp_ms, value)]
                if fresh and previous_ms is not None and previous_ms < timestamp_ms:
                    samples.insert(0, (previous_ms, 0.0))
                out.append(({**base, **extra}, samples))

            add({"__name__": REQUESTS}, self.requests[labels])
            acc = 0
            for le, n in zip(ISTIO_BUCKETS_MS, h.buckets, strict=True):
                acc += n
                add({"__name__": f"{DURATION}_bucket", "le": _le(le)}, acc)
            add({"__name__": f"{DURATION}_bucket", "le": "+Inf"}, h.count)
            add({"__name__": f"{DURATION}_sum"}, h.total)
            add({"__name__": f"{DURATION}_count"}, h.count)
        return out


def _le(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else str(bound)


# ---- Prometheus remote_write 0.1 (prometheus.WriteRequest), encoded by hand: four messages
def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def encode_write_request(series: Sequence[Series]) -> bytes:
    """``WriteRequest`` protobuf bytes, labels sorted by name as Prometheus sends them."""
    body = bytearray()
    for labels, samples in series:
        ts = bytearray()
        for name, value in sorted(labels.items()):
            ts += _field(1, _field(1, name.encode()) + _field(2, value.encode()))
        for t, v in samples:
            ts += _field(2, b"\x09" + struct.pack("<d", float(v)) + b"\x10" + _varint(t))
        body += _field(1, bytes(ts))
    return bytes(body)


def snappy_block(data: bytes) -> bytes:
    """Snappy block format (what remote_write's ``Content-Encoding: snappy`` means)."""
    import cramjam  # noqa: PLC0415 (only the sender needs it)

    return bytes(cramjam.snappy.compress_raw(data))


REMOTE_WRITE_HEADERS = {
    "Content-Encoding": "snappy",
    "Content-Type": "application/x-protobuf",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}

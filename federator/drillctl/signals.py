"""Golden signals of a drill: the PromQL, the before/during/after windows, the summaries. Pure.

Per drill service and per *client* cluster (``source_cluster``: a drill changes what clients
in the target clusters see), four series over Istio's standard metrics:

- request rate: ``sum by (source_cluster) (rate(istio_requests_total{...}[w]))``
- error ratio: the 5xx share of that rate;
- p50 / p99 latency: ``histogram_quantile`` over ``istio_request_duration_milliseconds_bucket``.

One ``query_range`` per (service, signal) covers before + during + after; each point then
falls into the phase whose window holds it. The rate window ``w`` follows the resolution
(four steps, between 10 s and 5 m), so a 20-second test drill and a one-hour drill both chart.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from federator.core.model import ServiceKey

REQUESTS = "istio_requests_total"
DURATION_BUCKETS = "istio_request_duration_milliseconds_bucket"
BY = "source_cluster"
"""The label the signals are split by: the cluster of the calling workload."""
MAX_POINTS = 240
"""Points per series at most (the resolution step follows the covered time)."""


class Signal(enum.StrEnum):
    RATE = "rate"
    ERRORS = "error_ratio"
    P50 = "p50_ms"
    P99 = "p99_ms"


SIGNAL_TITLES = {
    Signal.RATE: "Request rate (req/s)",
    Signal.ERRORS: "Error ratio (5xx)",
    Signal.P50: "p50 latency (ms)",
    Signal.P99: "p99 latency (ms)",
}


class Window(enum.StrEnum):
    BEFORE = "before"
    DURING = "during"
    AFTER = "after"


@dataclass(frozen=True, slots=True)
class Windows:
    """Unix seconds: before = [start - lead, start), during = [start, end), after = [end, stop]."""

    start: float
    end: float
    lead: float
    stop: float

    @property
    def first(self) -> float:
        return self.start - self.lead

    def of(self, at: float) -> Window | None:
        if self.first <= at < self.start:
            return Window.BEFORE
        if self.start <= at < self.end:
            return Window.DURING
        if self.end <= at <= self.stop:
            return Window.AFTER
        return None

    @property
    def step(self) -> float:
        """Resolution: the whole range in at most ``MAX_POINTS`` points, at least 1 s."""
        return max(1.0, math.ceil((self.stop - self.first) / MAX_POINTS))

    @property
    def rate_window(self) -> str:
        return f"{int(min(300.0, max(10.0, 4 * self.step)))}s"


def windows(*, started: float, ended: float, verified: float | None, now: float) -> Windows:
    """The windows of a drill that started at ``started`` and began rolling back at ``ended``;
    after runs from the verification (or ``ended``) for as long as the drill ran (at least
    60 s, at most 15 m), but not past ``now``."""
    length = min(900.0, max(60.0, ended - started))
    after_from = max(ended, verified or ended)
    return Windows(start=started, end=after_from, lead=length, stop=min(now, after_from + length))


def _selector(service: ServiceKey, extra: str = "") -> str:
    # the client side: a mesh reports every request twice (source and destination sidecar),
    # and what a drill injects (aborts, delays) happens in the client's sidecar only
    base = (
        'reporter="source",'
        f'destination_service_name="{service.name}",'
        f'destination_service_namespace="{service.namespace}"'
    )
    return "{" + base + (f",{extra}" if extra else "") + "}"


def queries(service: ServiceKey, rate_window: str) -> dict[Signal, str]:
    """The PromQL of every signal of ``service``, split by ``source_cluster``."""
    w = rate_window
    total = f"sum by ({BY}) (rate({REQUESTS}{_selector(service)}[{w}]))"
    five_xx = _selector(service, 'response_code=~"5.."')
    errors = f"sum by ({BY}) (rate({REQUESTS}{five_xx}[{w}]))"
    buckets = f"sum by ({BY}, le) (rate({DURATION_BUCKETS}{_selector(service)}[{w}]))"
    return {
        Signal.RATE: total,
        Signal.ERRORS: f"({errors} or {total} * 0) / {total}",
        Signal.P50: f"histogram_quantile(0.5, {buckets})",
        Signal.P99: f"histogram_quantile(0.99, {buckets})",
    }


Points = tuple[tuple[float, float], ...]


@dataclass(frozen=True, slots=True)
class SeriesSummary:
    """Mean of the finite points of one series in each window (None: no point there)."""

    before: float | None
    during: float | None
    after: float | None

    def get(self, window: Window) -> float | None:
        return {Window.BEFORE: self.before, Window.DURING: self.during, Window.AFTER: self.after}[
            window
        ]


def summarize(points: Points, w: Windows) -> SeriesSummary:
    sums: dict[Window, list[float]] = {x: [] for x in Window}
    for at, value in points:
        where = w.of(at)
        if where is not None and math.isfinite(value):
            sums[where].append(value)
    means = {k: (sum(v) / len(v) if v else None) for k, v in sums.items()}
    return SeriesSummary(means[Window.BEFORE], means[Window.DURING], means[Window.AFTER])


def matrix_points(result: Sequence[Mapping[str, object]]) -> dict[str, Points]:
    """A Prometheus ``matrix`` result -> points per ``source_cluster`` (NaN/Inf dropped)."""
    out: dict[str, Points] = {}
    for series in result:
        metric = series.get("metric") or {}
        cluster = str(metric.get(BY, "") if isinstance(metric, Mapping) else "") or "(unknown)"
        values = series.get("values") or []
        points: list[tuple[float, float]] = []
        if isinstance(values, Sequence):
            for pair in values:
                if isinstance(pair, Sequence) and len(pair) == 2:
                    value = float(str(pair[1]))
                    if math.isfinite(value):
                        points.append((float(str(pair[0])), value))
        out[cluster] = tuple(points)
    return out

"""The differential test's data: counters with resets, gauges, histograms, NaN, a stale end.

Fixed seed; timestamps are 15 s apart with a few ms of jitter (as real scrapes have) and
lie within the last hour, because Prometheus's head refuses samples much older than what
it already holds.
"""

from __future__ import annotations

import math
import random
import time

from tests.helpers.prometheus_remote import STALE_NAN, Series

STEP_MS = 15_000
POINTS = 180  # 45 minutes


def make_dataset(now_ms: int | None = None) -> tuple[int, list[Series]]:
    """``(t0_ms, series)``: samples from ``t0`` to ``t0 + 45 min``, t0 about 50 min ago."""
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    t0 = (now - 50 * 60_000) // 60_000 * 60_000
    rnd = random.Random(42)
    series: list[Series] = []

    def times(offset: int) -> list[int]:
        return [t0 + i * STEP_MS + offset + rnd.randint(0, 150) for i in range(POINTS)]

    for job in ("api", "web"):
        for instance in ("a:80", "b:80"):
            for code in ("200", "500"):
                value, points = rnd.uniform(0, 100), []
                for i, t in enumerate(times(rnd.randint(0, 900))):
                    value += rnd.uniform(0, 20 if code == "200" else 3)
                    if i in (60, 131) and instance == "b:80":
                        value = rnd.uniform(0, 5)  # counter reset
                    points.append((t, round(value, 3)))
                labels = {"__name__": "http_requests_total", "job": job, "instance": instance}
                series.append(({**labels, "code": code}, points))
    for room in ("kitchen", "hall", "cellar", "attic"):
        points = [(t, round(rnd.gauss(20, 8), 4)) for t in times(rnd.randint(0, 900))]
        series.append(({"__name__": "temperature_celsius", "room": room}, points))
    bounds = ("0.05", "0.1", "0.25", "0.5", "1", "+Inf")
    for job in ("api", "web"):
        counts = [0.0] * len(bounds)
        stamps = times(rnd.randint(0, 900))
        per_bound: list[list[tuple[int, float]]] = [[] for _ in bounds]
        for t in stamps:
            for _ in range(rnd.randint(0, 30)):
                latency = rnd.expovariate(4)
                for k, b in enumerate(bounds):
                    if latency <= float(b):
                        counts[k] += 1
            for k in range(len(bounds)):
                per_bound[k].append((t, counts[k]))
        for b, points in zip(bounds, per_bound, strict=True):
            name = "request_duration_seconds_bucket"
            series.append(({"__name__": name, "job": job, "le": b}, points))
            # a second histogram with the same labels (different name): 2.42 fails when a
            # selector matches both (the results would share a label set)
            doubled = [(t, c * 2) for t, c in points]
            series.append(({"__name__": "request_size_bytes_bucket", "job": job, "le": b}, doubled))
    up = [(t, 1.0) for t in times(0)]
    up[100] = (up[100][0], STALE_NAN)
    series.append(({"__name__": "up", "job": "flaky"}, up[:101] + up[140:]))
    series.append(({"__name__": "up", "job": "steady"}, [(t, 1.0) for t in times(5)]))
    odd = [(t, math.nan if i % 17 == 5 else rnd.uniform(-50, 50)) for i, t in enumerate(times(7))]
    series.append(({"__name__": "odd_gauge", "kind": "with_nan"}, odd))
    return t0, series

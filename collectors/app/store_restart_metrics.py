"""The embedded Redis's supervision on ``/metrics``: restarts, failed attempts, up or not.

Read from the supervisor's state at scrape time (it counts; nothing is logged per scrape),
so an alert can fire on ``increase(meshfed_store_restarts_total[1h]) > 0`` (Redis is being
killed, usually by the OOM killer) or on ``meshfed_store_embedded_up == 0``.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from collectors.store.supervisor import RestartState

REASONS = ("killed", "exited", "hung")
"""Every ``reason`` label value, served from the start so that ``increase()`` sees the
first restart (a series that appears at 1 has no increase)."""


class StoreRestartMetrics(Collector):
    """A prometheus_client collector over one supervisor's ``RestartState``."""

    def __init__(self, *, state: RestartState) -> None:
        self._state = state

    def collect(self) -> Iterator[Metric]:
        s = self._state
        restarts = CounterMetricFamily(
            "meshfed_store_restarts",
            "Restarts of the embedded Redis after its process died, by how it died (killed:"
            " by a signal, as the OOM killer does; exited: it stopped by itself).",
            labels=["reason"],
        )
        for reason in REASONS:
            restarts.add_metric([reason], s.restarts[reason])
        yield restarts
        failures = CounterMetricFamily(
            "meshfed_store_restart_failures",
            "Attempts to restart the embedded Redis that failed (see its redis.log).",
        )
        failures.add_metric([], s.failed_attempts)
        yield failures
        up = GaugeMetricFamily(
            "meshfed_store_embedded_up", "1 while the embedded Redis process runs, else 0."
        )
        up.add_metric([], 1.0 if s.up else 0.0)
        yield up

"""The query HTTP app: Prometheus API, trace and log routes, ``/``, ``/-/healthy``, ``/-/ready``.

One Starlette app serves every query route so ``meshfed store serve`` and ``meshfed
collect`` mount the same thing. ``/-/ready`` answers 200 only while the store answers, so
a load balancer stops sending queries to an instance whose Redis is gone. ``/-/healthy``
(a liveness probe) answers 200 while the process can recover by itself, a store outage
included, and 503 once it cannot (``liveness`` names why: the embedded Redis could not be
restarted), so that the probe restarts the process instead of leaving it down for good.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from collectors._core.errors import CollectorError
from collectors.api.grafana import GrafanaApi
from collectors.api.logs import LogApi
from collectors.api.prometheus import PrometheusApi, PrometheusApiSettings
from collectors.api.traces import TraceApi
from collectors.api.tsdb_status import TsdbStatusApi, TsdbStatusSource
from collectors.promql.source import LabelMatcher, MatchType, PagedSeriesSource
from collectors.store.logs import LogStore
from collectors.store.traces import TraceStore

log = logging.getLogger(__name__)
Liveness = Callable[[], str | None]
"""Why the process cannot recover by itself, or ``None`` while it can."""
_PROBE = [LabelMatcher("__name__", MatchType.EQUAL, "__meshfed_readiness_probe__")]


class QueryStore(Protocol):
    """What the app is built over (``TelemetryStore`` is one): metrics to query, and traces
    and logs when the store has them."""

    @property
    def metrics(self) -> PagedSeriesSource: ...

    @property
    def traces(self) -> TraceStore | None:
        """The trace store; ``None`` serves no trace routes."""
        ...

    @property
    def logs(self) -> LogStore | None:
        """The log store; ``None`` serves no log routes (nor ``?logs=true`` on traces)."""
        ...


def build_app(
    *,
    store: QueryStore,
    settings: PrometheusApiSettings,
    clock: Callable[[], float] = time.time,
    liveness: Liveness | None = None,
) -> Starlette:
    """The Starlette app with every query route of ``store``."""
    settings.validate()
    health = _Health(store=store, clock=clock, liveness=liveness)
    routes: list[BaseRoute] = [*health.routes()]
    routes += PrometheusApi(source=store.metrics, settings=settings, clock=clock).routes()
    if isinstance(store.metrics, TsdbStatusSource):
        routes += TsdbStatusApi(source=store.metrics).routes()
    routes += GrafanaApi().routes()
    traces, logs = store.traces, store.logs
    if traces is not None:
        routes += TraceApi(store=traces, log_store=logs, clock=clock).routes()
    if logs is not None:
        routes += LogApi(store=logs, clock=clock).routes()
    return Starlette(routes=routes)


def build_probe_app(
    *, store: QueryStore, clock: Callable[[], float] = time.time, liveness: Liveness | None = None
) -> Starlette:
    """Only ``/``, ``/-/healthy`` and ``/-/ready``: the probe listener's app."""
    return Starlette(routes=_Health(store=store, clock=clock, liveness=liveness).routes())


class _Health:
    """``/``, ``/-/healthy`` (the process can recover) and ``/-/ready`` (the store answers)."""

    def __init__(
        self, *, store: QueryStore, clock: Callable[[], float], liveness: Liveness | None
    ) -> None:
        self._store = store
        self._clock = clock
        self._liveness = liveness

    def routes(self) -> list[Route]:
        return [
            Route("/", self.root, methods=["GET"]),
            Route("/-/healthy", self.healthy, methods=["GET"]),
            Route("/-/ready", self.ready, methods=["GET"]),
        ]

    async def root(self, request: Request) -> Response:
        return PlainTextResponse("meshfed query API\n")

    async def healthy(self, request: Request) -> Response:
        """200 unless ``liveness`` says the process cannot recover; then 503 naming why."""
        reason = self._liveness() if self._liveness is not None else None
        if reason is not None:
            return PlainTextResponse(f"unhealthy: {reason}\n", status_code=503)
        return PlainTextResponse("healthy\n")

    async def ready(self, request: Request) -> Response:
        """200 when a (tiny) metrics read succeeds, else 503 naming why."""
        try:
            now = round(self._clock() * 1000)
            await self._store.metrics.select(_PROBE, now - 1, now)
        except (CollectorError, OSError) as e:
            log.warning("not ready: store unreachable: %s", e)
            return PlainTextResponse(f"store unreachable: {e}\n", status_code=503)
        return PlainTextResponse("ready\n")

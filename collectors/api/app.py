"""The query HTTP app: Prometheus API, trace and log routes, ``/`` and ``/-/ready``.

One Starlette app serves every query route so ``meshfed store serve`` and ``meshfed
collect`` mount the same thing. ``/-/ready`` answers 200 only while the store answers, so
a load balancer stops sending queries to an instance whose Redis is gone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from collectors._core.errors import CollectorError
from collectors.api.grafana import grafana_routes
from collectors.api.logs import log_routes
from collectors.api.prometheus import PrometheusApiSettings, prometheus_routes
from collectors.api.traces import trace_routes
from collectors.promql.source import LabelMatcher, MatchType, SeriesSource

log = logging.getLogger(__name__)
_PROBE = [LabelMatcher("__name__", MatchType.EQUAL, "__meshfed_readiness_probe__")]


class QueryStore(Protocol):
    """What the app needs from the store: metrics to query (traces and logs if present)."""

    @property
    def metrics(self) -> SeriesSource: ...


def build_app(
    *,
    store: QueryStore,
    settings: PrometheusApiSettings,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    """The Starlette app with every query route of ``store``."""
    settings.validate()
    routes: list[BaseRoute] = [
        Route("/", _root, methods=["GET"]),
        Route("/-/healthy", _root, methods=["GET"]),
        Route("/-/ready", _ready_handler(store, clock), methods=["GET"]),
    ]
    routes += prometheus_routes(source=store.metrics, settings=settings, clock=clock)
    routes += grafana_routes()
    routes += _trace_and_log_routes(store, clock)
    return Starlette(routes=routes)


async def _root(request: Request) -> Response:
    return PlainTextResponse("meshfed query API\n")


def _ready_handler(store: QueryStore, clock: Callable[[], float]) -> Callable[[Request], Any]:
    async def ready(request: Request) -> Response:
        try:
            ping = getattr(store, "ping", None)
            if ping is not None:
                await ping()
            else:
                now = round(clock() * 1000)
                await store.metrics.select(_PROBE, now - 1, now)
        except (CollectorError, OSError) as e:
            log.warning("not ready: store unreachable: %s", e)
            return PlainTextResponse(f"store unreachable: {e}\n", status_code=503)
        return PlainTextResponse("ready\n")

    return ready


def _trace_and_log_routes(store: QueryStore, clock: Callable[[], float]) -> list[BaseRoute]:
    """The other helpers' trace and log routes, when the store has those parts."""
    routes: list[BaseRoute] = []
    traces = getattr(store, "traces", None)
    logs = getattr(store, "logs", None)
    if traces is not None:
        routes += trace_routes(store=traces, log_store=logs, clock=clock)
    if logs is not None:
        routes += log_routes(store=logs, clock=clock)
    return routes

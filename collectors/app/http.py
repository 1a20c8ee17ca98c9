"""The collector's HTTP listener: query API + ``POST /api/v1/write`` + ``/metrics``.

One port serves what Prometheus-speaking peers need from meshfed: they query it (the
store's Prometheus-compatible API, traces, logs), remote-write to it, and scrape its own
metrics. The query app is mounted unchanged under the receiver routes; this module builds
that app, :class:`collectors._kits.http_server.HttpServer` serves it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route


def metrics_route(
    registry: CollectorRegistry, *, refresh: Callable[[], Awaitable[None]] | None = None
) -> Route:
    """``GET /metrics``: the process's own metrics in the text exposition format;
    ``refresh`` (if any) is awaited first, for figures read from elsewhere (the store)."""

    async def metrics(request: Request) -> Response:
        if refresh is not None:
            await refresh()
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return Route("/metrics", metrics, methods=["GET"])


def combined_app(*, query_app: Starlette, routes: Sequence[BaseRoute]) -> Starlette:
    """``routes`` first, everything else handled by the query app."""
    return Starlette(routes=[*routes, Mount("/", app=query_app)])

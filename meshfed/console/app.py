"""The console's HTTP app: the page shell, its static files, JSON routes and the SSE stream.

Every JSON route is a read of the federator or the store shaped by ``views``/``telemetry``;
a source that fails answers 502 with ``{"error": ...}`` (the page shows that text), bad input
400 naming the parameter. Nothing is cached except the previous self-metrics read, kept to
turn counters into rates.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from federator.core.drills.summary import ReadDrill
from federator.drillctl.collect import collect
from federator.drillctl.report import Telemetry
from federator.drillctl.report_html import to_html
from federator.drillctl.store import StoreClient
from meshfed.console import drill_views, telemetry, views
from meshfed.console.events import Broadcaster
from meshfed.console.istiod import IstiodReader
from meshfed.console.kube_objects import ObjectReader
from meshfed.console.settings import ConsoleSettings, read_token
from meshfed.console.sources import FederatorSource, SourceError, StoreSource, fetch_text

Handler = Callable[[Request], Awaitable[Response]]
STATIC = resources.files("meshfed.console") / "static"
RATE_WINDOW_S = 1.0
MAX_RANGE_MIN = 24 * 60


class BadParamError(ValueError):
    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"parameter {name!r}: {reason}")


def guarded(handler: Handler) -> Handler:
    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except BadParamError as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        except SourceError as error:
            return JSONResponse({"error": str(error)}, status_code=502)

    return run


def _int(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    text = request.query_params.get(name, "")
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadParamError(name, f"{text!r} is not an integer") from None
    if not lo <= value <= hi:
        raise BadParamError(name, f"{value} is outside [{lo}, {hi}]")
    return value


class Console:
    """The sources and routes of one ``meshfed console``."""

    def __init__(self, settings: ConsoleSettings, objects: ObjectReader | None = None) -> None:
        settings.validate()
        self.settings = settings
        self.federator = FederatorSource(settings.federator)
        self.store = StoreSource(settings.store)
        self.events = Broadcaster(self.federator)
        self.objects = objects
        self.istiod = IstiodReader(settings.istiods)
        config = objects.config if objects else None
        self.regions: dict[str, str] = (
            {str(c.name): c.region for c in config.clusters} if config else {}
        )
        self.topology = str(config.topology.value) if config else ""
        self._counters: tuple[float, dict[str, dict[str, Any]]] | None = None

    async def start(self) -> None:
        await self.federator.start()
        await self.store.start()
        if self.objects is not None:
            await self.objects.start()
        await self.events.start()

    async def shutdown(self) -> None:
        await self.events.shutdown()
        if self.objects is not None:
            await self.objects.shutdown()
        await self.store.shutdown()
        await self.federator.shutdown()

    # ---- federation -------------------------------------------------------------------

    async def overview(self, request: Request) -> Response:
        status = await self.federator.status()
        return JSONResponse(views.overview_json(status, self.regions, self.topology))

    async def _propagation(self) -> dict[str, float]:
        if not self.settings.federator_metrics:
            return {}
        text = await fetch_text(self.settings.federator_metrics, self.settings.federator.timeout_s)
        sums: dict[str, float] = {}
        counts: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            if family.name != "meshfed_federator_propagation_latency_seconds":
                continue
            for s in family.samples:
                target = s.labels.get("target", "")
                if s.name.endswith("_sum"):
                    sums[target] = s.value
                elif s.name.endswith("_count"):
                    counts[target] = s.value
        return {t: sums.get(t, 0.0) / n for t, n in counts.items() if n}

    async def services(self, request: Request) -> Response:
        namespace = request.query_params.get("namespace", "")
        status, services, propagation = await asyncio.gather(
            self.federator.status(), self.federator.services(namespace), self._propagation()
        )
        clusters = [c.name for c in status.clusters]
        return JSONResponse(views.services_json(services, clusters, propagation))

    async def service(self, request: Request) -> Response:
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        status, service = await asyncio.gather(
            self.federator.status(), self.federator.service(namespace, name)
        )
        clusters = [c.name for c in status.clusters]
        body = views.service_row(service, clusters)
        body["endpoints"] = views.endpoints_json(service)
        if self.objects is not None:
            body["objects"] = await self.objects.objects(namespace, name)
        else:
            body["objects"] = None
        return JSONResponse(body)

    async def istiod_served(self, request: Request) -> Response:
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        return JSONResponse(await self.istiod.served(namespace, name))

    async def drills(self, request: Request) -> Response:
        return JSONResponse(
            {"drills": [views.drill_json(d) for d in await self.federator.drills()]}
        )

    async def drill(self, request: Request) -> Response:
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        d = await self.federator.drill(namespace, name)
        return JSONResponse(drill_views.drill_detail(d, now=time.time()))

    def _drill_telemetry(self, read: ReadDrill, now: float) -> Telemetry:
        """The golden signals and exemplar traces of the drill's windows (blocking: a thread)."""
        t = self.settings.store
        token = read_token(t.token_file, "--store-token-file") or None
        ca = str(t.ca) if t.ca else None
        cert = (str(t.cert), str(t.key)) if t.cert is not None and t.key is not None else None
        with StoreClient(t.url, timeout=t.timeout_s, token=token, ca=ca, cert=cert) as client:
            return collect(store=client, spec=read.spec, journal=read.journal, now=now)

    async def drill_report(self, request: Request) -> Response:
        """The same HTML report as ``meshfed drill report --format html``, signals included."""
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        read = drill_views.read_object(await self.federator.drill(namespace, name))
        if read is None:
            raise SourceError("the federator's API sends no Drill object: upgrade the federator")
        now = time.time()
        found = await asyncio.to_thread(self._drill_telemetry, read, now)
        return HTMLResponse(to_html(drill_views.live_report(read, now, found)))

    # ---- telemetry --------------------------------------------------------------------

    async def signals(self, request: Request) -> Response:
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        minutes = _int(request, "minutes", 15, 1, MAX_RANGE_MIN)
        end = time.time()
        step = max(minutes * 60 // 120, 5)
        queries = telemetry.golden_queries(name, namespace)
        answers = await asyncio.gather(
            *(
                self.store.get_json(
                    "/api/v1/query_range",
                    {"query": q, "start": end - minutes * 60, "end": end, "step": step},
                )
                for q in queries.values()
            )
        )
        return JSONResponse(
            {
                "queries": queries,
                "step": step,
                "signals": {
                    k: telemetry.matrix_series(a or {})
                    for k, a in zip(queries, answers, strict=True)
                },
            }
        )

    async def trace_search(self, request: Request) -> Response:
        q = request.query_params
        params: dict[str, Any] = {"limit": _int(request, "limit", 50, 1, 1000)}
        if q.get("service"):
            params["service"] = q["service"]
        for name in ("minDuration", "maxDuration", "start", "end"):
            if q.get(name):
                params[name] = q[name]
        if q.get("status") not in (None, "", "error", "ok", "unset"):
            raise BadParamError("status", "must be error, ok or unset")
        tags = telemetry.search_tags(q.get("cluster", ""), q.get("status", ""), q.get("tags", ""))
        if tags:
            params["tags"] = tags
        body = await self.store.get_json("/api/search", params)
        return JSONResponse(body or {"traces": []})

    async def trace(self, request: Request) -> Response:
        trace_id = request.path_params["trace_id"]
        body = await self.store.get_json(f"/api/traces/{trace_id}", {"logs": "true"})
        if body is None:
            return JSONResponse({"error": f"trace {trace_id} not found"}, status_code=404)
        return JSONResponse(telemetry.waterfall(body))

    async def logs(self, request: Request) -> Response:
        params = {
            k: v
            for k, v in request.query_params.items()
            if k in ("cluster", "tag", "contains", "trace_id", "severity", "start", "end") and v
        }
        params["limit"] = str(_int(request, "limit", 100, 1, 5000))
        return JSONResponse(await self.store.get_json("/api/logs", params) or {"logs": []})

    async def health(self, request: Request) -> Response:
        now = time.monotonic()
        after = telemetry.receiver_counters(await self.store.metrics_text())
        if self._counters is None or now - self._counters[0] > 60:
            await asyncio.sleep(RATE_WINDOW_S)
            before, after, seconds = (
                after,
                telemetry.receiver_counters(await self.store.metrics_text()),
                RATE_WINDOW_S,
            )
            now = time.monotonic()
        else:
            seconds, before = now - self._counters[0], self._counters[1]
        self._counters = (now, after)
        series_error = ""
        try:
            answer = await self.store.get_json(
                "/api/v1/query", {"query": 'count by (cluster) ({__name__=~".+"})'}
            )
            series = telemetry.vector_by(answer or {}, "cluster")
        except SourceError as error:
            series, series_error = {}, str(error)
        return JSONResponse(
            {
                "receivers": telemetry.ingest_rates(before, after, seconds),
                "series": series,
                "series_error": series_error,
                "series_cap": self.settings.store.series_cap,
            }
        )

    # ---- shell ------------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"))

    async def live(self, request: Request) -> Response:
        return StreamingResponse(
            self.events.stream(self.settings.sse_keepalive_s),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    def app(self) -> Starlette:
        @asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            await self.start()
            try:
                yield
            finally:
                await self.shutdown()

        api = [
            ("/api/overview", self.overview),
            ("/api/services", self.services),
            ("/api/service/{namespace}/{name}", self.service),
            ("/api/signals/{namespace}/{name}", self.signals),
            ("/api/drills", self.drills),
            ("/api/drill/{namespace}/{name}", self.drill),
            ("/api/istiod/{namespace}/{name}", self.istiod_served),
            ("/report/drill/{namespace}/{name}", self.drill_report),
            ("/api/traces", self.trace_search),
            ("/api/trace/{trace_id}", self.trace),
            ("/api/logs", self.logs),
            ("/api/health", self.health),
        ]
        routes: list[Route | Mount] = [
            Route(path, guarded(handler), methods=["GET"]) for path, handler in api
        ]
        routes += [
            Route("/api/events", self.live, methods=["GET"]),
            Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
            Route("/", self.index, methods=["GET"]),
        ]
        return Starlette(routes=routes, lifespan=lifespan)

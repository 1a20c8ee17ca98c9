"""Tempo- and Jaeger-style trace query routes over the trace store.

``/api/traces/<id>`` answers Tempo's OTLP-JSON ``{"batches": [...]}`` (plus ``truncated``, and
the correlated log lines with ``?logs=true``); ``/api/search`` Tempo's search; ``/api/services``
and ``/api/services/<svc>/operations`` Jaeger's ``{"data": [...], "total": n}``. Bad
parameters answer 400 with a JSON error naming the parameter; an unavailable store 503.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from collectors._core.errors import ParamError, PermanentError, StoreUnavailableError
from collectors.api import trace_log_params as p
from collectors.api.trace_json import logs_json, tempo_batches
from collectors.store.logs import LogQuery, LogStore
from collectors.store.trace_query import TraceQuery
from collectors.store.traces import TraceStore

Handler = Callable[[Request], Awaitable[Response]]
TRUNCATED_HEADER = "X-Meshfed-Truncated"


def error_response(status: int, message: str, parameter: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"status": "error", "error": message}
    if parameter is not None:
        body["parameter"] = parameter
    return JSONResponse(body, status_code=status)


def guarded(handler: Handler) -> Handler:
    """Map bad input to 400 and an unavailable store to 503 (with Retry-After)."""

    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except ParamError as e:
            # Not str(e), which is Prometheus's wording: this API has always quoted the
            # parameter the Python way, and clients may match on the text.
            return error_response(
                400, f"invalid parameter {e.parameter!r}: {e.reason}", e.parameter
            )
        except PermanentError as e:
            return error_response(400, str(e))
        except StoreUnavailableError as e:
            response = error_response(503, str(e))
            response.headers["Retry-After"] = "1"
            return response

    return run


def truncated_response(body: dict[str, Any], truncated: bool) -> JSONResponse:
    body["truncated"] = truncated
    response = JSONResponse(body)
    if truncated:
        response.headers[TRUNCATED_HEADER] = "true"
    return response


def _jaeger(data: list[str]) -> JSONResponse:
    return JSONResponse({"data": data, "total": len(data), "limit": 0, "offset": 0, "errors": None})


class TraceApi:
    """The trace API routes over ``store``, one method per route; ``log_store`` enables
    ``/api/traces/<id>?logs=true``."""

    def __init__(
        self,
        *,
        store: TraceStore,
        log_store: LogStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._log_store = log_store
        self._clock = clock

    def routes(self) -> list[Route]:
        return [
            Route("/api/echo", self.echo, methods=["GET"]),
            Route("/api/traces/{trace_id}", guarded(self.get_trace), methods=["GET"]),
            Route("/api/search", guarded(self.search), methods=["GET"]),
            Route("/api/search/tags", guarded(self.tag_names), methods=["GET"]),
            Route("/api/search/tag/{tag:path}/values", guarded(self.tag_values), methods=["GET"]),
            Route("/api/services", guarded(self.services), methods=["GET"]),
            Route(
                "/api/services/{service:path}/operations",
                guarded(self.operations),
                methods=["GET"],
            ),
        ]

    async def echo(self, request: Request) -> Response:
        """Tempo's liveness probe, which Grafana's data source test calls."""
        return PlainTextResponse("echo")

    async def get_trace(self, request: Request) -> Response:
        """``/api/traces/<id>``: the trace's spans (and log lines with ``?logs=true``)."""
        trace_id = p.trace_id("traceID", request.path_params["trace_id"])
        want_logs = p.boolean("logs", request.query_params.get("logs"))
        for name in ("start", "end"):  # accepted as Tempo does, a read by id needs no range
            if request.query_params.get(name):
                p.unix_seconds_ns(name, request.query_params[name])
        if want_logs and self._log_store is None:
            raise ParamError("logs", "this server has no log store")
        result = await self._store.get_trace(trace_id)
        if not result.spans:
            return error_response(404, f"trace {trace_id} not found")
        body: dict[str, Any] = {"batches": tempo_batches(result.spans)}
        truncated = result.truncated
        if want_logs and self._log_store is not None:
            logs = await self._log_store.query(
                LogQuery(
                    start_unix_nano=0,
                    end_unix_nano=2**63 - 1,
                    limit=self._log_store.settings.max_logs_per_trace,
                    trace_id=trace_id,
                )
            )
            body["logs"] = logs_json(logs.records)
            body["logsTruncated"] = logs.truncated
            truncated = truncated or logs.truncated
        return truncated_response(body, truncated)

    async def search(self, request: Request) -> Response:
        """``/api/search``: Tempo's search over a time window."""
        q = request.query_params
        settings = self._store.settings
        start, end = p.time_range(
            q,
            now_ns=int(self._clock() * p.NS_PER_S),
            default_window_s=settings.search_default_window_s,
            unix_only=True,
        )
        query = TraceQuery(
            start_unix_nano=start,
            end_unix_nano=end,
            limit=p.integer(
                "limit",
                q.get("limit"),
                default=settings.search_default_limit,
                minimum=1,
                maximum=settings.search_max_limit,
            ),
            service=q.get("service") or None,
            name=q.get("name") or q.get("spanName") or None,
            tags=p.logfmt_tags("tags", q.get("tags", "")),
            min_duration_ns=p.duration_ns("minDuration", q["minDuration"])
            if q.get("minDuration")
            else None,
            max_duration_ns=p.duration_ns("maxDuration", q["maxDuration"])
            if q.get("maxDuration")
            else None,
        )
        if (
            query.min_duration_ns is not None
            and query.max_duration_ns is not None
            and query.min_duration_ns > query.max_duration_ns
        ):
            raise ParamError("minDuration", "minDuration is greater than maxDuration")
        result = await self._store.search(query)
        traces = [
            {
                "traceID": t.trace_id,
                "rootServiceName": t.root_service_name,
                "rootTraceName": t.root_trace_name,
                "startTimeUnixNano": str(t.start_time_unix_nano),
                "durationMs": t.duration_ns // 1_000_000,
            }
            for t in result.traces
        ]
        metrics = {
            "inspectedTraces": result.inspected_traces,
            "inspectedBytes": str(result.inspected_bytes),
        }
        return truncated_response({"traces": traces, "metrics": metrics}, result.truncated)

    async def tag_names(self, request: Request) -> Response:
        return JSONResponse({"tagNames": await self._store.tag_names()})

    async def tag_values(self, request: Request) -> Response:
        tag = request.path_params["tag"]
        if not tag or len(tag) > 1024:
            raise ParamError("tag", "tag name must be 1 to 1024 characters")
        return JSONResponse({"tagValues": await self._store.tag_values(tag)})

    async def services(self, request: Request) -> Response:
        """Jaeger's ``/api/services``."""
        return _jaeger(await self._store.services())

    async def operations(self, request: Request) -> Response:
        """Jaeger's ``/api/services/<service>/operations``."""
        service = request.path_params["service"]
        if not service or len(service) > 1024:
            raise ParamError("service", "service name must be 1 to 1024 characters")
        return _jaeger(await self._store.operations(service))

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

from collectors._core.errors import PermanentError, StoreUnavailableError
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
        except p.ParamError as e:
            return error_response(400, str(e), e.parameter)
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


def trace_routes(
    *,
    store: TraceStore,
    log_store: LogStore | None = None,
    clock: Callable[[], float] = time.time,
) -> list[Route]:
    """The trace API routes; ``log_store`` enables ``/api/traces/<id>?logs=true``."""
    settings = store.settings

    async def get_trace(request: Request) -> Response:
        trace_id = p.trace_id("traceID", request.path_params["trace_id"])
        want_logs = p.boolean("logs", request.query_params.get("logs"))
        for name in ("start", "end"):  # accepted as Tempo does, a read by id needs no range
            if request.query_params.get(name):
                p.unix_seconds_ns(name, request.query_params[name])
        if want_logs and log_store is None:
            raise p.ParamError("logs", "this server has no log store")
        result = await store.get_trace(trace_id)
        if not result.spans:
            return error_response(404, f"trace {trace_id} not found")
        body: dict[str, Any] = {"batches": tempo_batches(result.spans)}
        truncated = result.truncated
        if want_logs and log_store is not None:
            logs = await log_store.query(
                LogQuery(
                    start_unix_nano=0,
                    end_unix_nano=2**63 - 1,
                    limit=log_store.settings.max_logs_per_trace,
                    trace_id=trace_id,
                )
            )
            body["logs"] = logs_json(logs.records)
            body["logsTruncated"] = logs.truncated
            truncated = truncated or logs.truncated
        return truncated_response(body, truncated)

    async def search(request: Request) -> Response:
        q = request.query_params
        start, end = p.time_range(
            q,
            now_ns=int(clock() * p.NS_PER_S),
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
            raise p.ParamError("minDuration", "minDuration is greater than maxDuration")
        result = await store.search(query)
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

    async def tag_names(request: Request) -> Response:
        return JSONResponse({"tagNames": await store.tag_names()})

    async def tag_values(request: Request) -> Response:
        tag = request.path_params["tag"]
        if not tag or len(tag) > 1024:
            raise p.ParamError("tag", "tag name must be 1 to 1024 characters")
        return JSONResponse({"tagValues": await store.tag_values(tag)})

    async def services(request: Request) -> Response:
        return _jaeger(await store.services())

    async def operations(request: Request) -> Response:
        service = request.path_params["service"]
        if not service or len(service) > 1024:
            raise p.ParamError("service", "service name must be 1 to 1024 characters")
        return _jaeger(await store.operations(service))

    async def echo(request: Request) -> Response:
        return PlainTextResponse("echo")

    return [
        Route("/api/echo", echo, methods=["GET"]),
        Route("/api/traces/{trace_id}", guarded(get_trace), methods=["GET"]),
        Route("/api/search", guarded(search), methods=["GET"]),
        Route("/api/search/tags", guarded(tag_names), methods=["GET"]),
        Route("/api/search/tag/{tag:path}/values", guarded(tag_values), methods=["GET"]),
        Route("/api/services", guarded(services), methods=["GET"]),
        Route("/api/services/{service:path}/operations", guarded(operations), methods=["GET"]),
    ]

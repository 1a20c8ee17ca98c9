"""The log query route: ``GET /api/logs`` over the log store.

Parameters: ``cluster``, ``tag``, ``start`` / ``end`` (unix seconds or RFC 3339; default the
last ``window`` of one hour), ``severity`` (minimum: a name such as ``warn`` or 0..24),
``contains`` (substring of the body), ``trace_id``, ``limit``. Answers
``{"logs": [...], "truncated": bool}``, newest first; 400 names a bad parameter, 503 when the
store is unavailable.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from collectors.api import trace_log_params as p
from collectors.api.trace_json import logs_json
from collectors.api.traces import guarded, truncated_response
from collectors.store.logs import LogQuery, LogStore

DEFAULT_WINDOW_S = 3600


def log_routes(*, store: LogStore, clock: Callable[[], float] = time.time) -> list[Route]:
    """The log API routes."""
    settings = store.settings

    async def query_logs(request: Request) -> Response:
        q = request.query_params
        unknown = set(q) - {
            "cluster",
            "tag",
            "start",
            "end",
            "severity",
            "contains",
            "trace_id",
            "limit",
        }
        if unknown:
            name = sorted(unknown)[0]
            raise p.ParamError(name, "unknown parameter")
        start, end = p.time_range(
            q,
            now_ns=int(clock() * p.NS_PER_S),
            default_window_s=DEFAULT_WINDOW_S,
            unix_only=False,
        )
        query = LogQuery(
            start_unix_nano=start,
            end_unix_nano=end,
            limit=p.integer(
                "limit",
                q.get("limit"),
                default=settings.query_default_limit,
                minimum=1,
                maximum=settings.query_max_limit,
            ),
            cluster=q.get("cluster"),
            tag=q.get("tag"),
            min_severity=p.severity("severity", q["severity"]) if q.get("severity") else None,
            contains=q.get("contains") or None,
            trace_id=p.trace_id("trace_id", q["trace_id"]) if q.get("trace_id") else None,
        )
        result = await store.query(query)
        return truncated_response({"logs": logs_json(result.records)}, result.truncated)

    return [Route("/api/logs", guarded(query_logs), methods=["GET"])]

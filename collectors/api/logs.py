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

from collectors._core.errors import ParamError
from collectors.api import trace_log_params as p
from collectors.api.trace_json import logs_json
from collectors.api.traces import guarded, truncated_response
from collectors.store.logs import LogQuery, LogStore

DEFAULT_WINDOW_S = 3600


_PARAMETERS = frozenset(
    ("cluster", "tag", "start", "end", "severity", "contains", "trace_id", "limit")
)


class LogApi:
    """The log API route over ``store``."""

    def __init__(self, *, store: LogStore, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    def routes(self) -> list[Route]:
        return [Route("/api/logs", guarded(self.query_logs), methods=["GET"])]

    async def query_logs(self, request: Request) -> Response:
        """``/api/logs``: matching records, newest first."""
        q = request.query_params
        unknown = set(q) - _PARAMETERS
        if unknown:
            name = sorted(unknown)[0]
            raise ParamError(name, "unknown parameter")
        settings = self._store.settings
        start, end = p.time_range(
            q,
            now_ns=int(self._clock() * p.NS_PER_S),
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
        result = await self._store.query(query)
        return truncated_response({"logs": logs_json(result.records)}, result.truncated)

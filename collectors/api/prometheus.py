"""Prometheus-compatible HTTP query API: /api/v1/query, query_range, series, labels, metadata.

Clients built for Prometheus (prometheus-api-client, Grafana) work unchanged: the same
parameters (GET or form POST), the same envelope ``{status, data, errorType, error,
warnings}``, the same error types and codes (bad_data 400, execution 422, timeout and
unavailable 503, internal 500). Bad input never yields a 5xx; an unreachable store is a
503 so clients retry.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from collectors._core.errors import (
    BadQueryError,
    ConfigError,
    ParamError,
    PermanentError,
    QueryExecutionError,
    QueryTimeoutError,
    RetryableError,
)
from collectors.api.prom_params import (
    MAX_TIME_MS,
    MIN_TIME_MS,
    envelope_error,
    envelope_ok,
    parse_duration_ms,
    parse_limit,
    parse_time,
    result_json,
)
from collectors.promql import QuerySettings, evaluate_instant, evaluate_range
from collectors.promql.ast import VectorSel, parse
from collectors.promql.engine import MAX_POINTS_PER_SERIES, RESOLUTION_ERROR
from collectors.promql.source import LabelMatcher, Page, PagedSeriesSource

log = logging.getLogger(__name__)
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_STATUS = {
    "bad_data": 400,
    "execution": 422,
    "timeout": 503,
    "unavailable": 503,
    "internal": 500,
}
Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class PrometheusApiSettings:
    """Bounds of the Prometheus-compatible API."""

    query: QuerySettings = field(default_factory=QuerySettings)
    """Engine bounds: samples per query, series per response, default timeout."""
    max_series_listed: int = 10_000
    """Series, label names or label values one /series or /labels answer may list."""

    def validate(self) -> None:
        self.query.validate()
        if self.max_series_listed <= 0:
            raise ConfigError("api.max_series_listed must be > 0")


def _json(body: str, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type="application/json")


def _error(error_type: str, message: str) -> Response:
    return _json(envelope_error(error_type, message), _STATUS[error_type])


class _Params:
    """Go's ``r.FormValue``: form body first, then the URL query."""

    def __init__(self, request: Request, form: FormData | None) -> None:
        self._query = request.query_params
        self._form = form

    def get(self, name: str) -> str:
        if self._form is not None and name in self._form:
            value = self._form.get(name)
            return value if isinstance(value, str) else ""
        return self._query.get(name, "")

    def getlist(self, name: str) -> list[str]:
        form = (
            []
            if self._form is None
            else [v for v in self._form.getlist(name) if isinstance(v, str)]
        )
        return form + list(self._query.getlist(name))


async def _params(request: Request) -> _Params:
    form = None
    if request.method == "POST":
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("application/x-www-form-urlencoded"):
            form = await request.form()
    return _Params(request, form)


def guarded(handler: Handler) -> Handler:
    """Map every failure to Prometheus's envelope; nothing escapes as a bare 500."""

    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except ParamError as e:
            return _error("bad_data", str(e))
        except BadQueryError as e:
            return _error("bad_data", f'invalid parameter "query": {e}')
        except QueryExecutionError as e:
            return _error("execution", str(e))
        except (QueryTimeoutError, TimeoutError):
            return _error("timeout", "query timed out in expression evaluation")
        except RetryableError as e:
            return _error("unavailable", f"store unavailable: {e}")
        except PermanentError as e:
            return _error("execution", str(e))
        except Exception:
            log.exception("query API handler failed on %s", request.url.path)
            return _error("internal", "internal error; see the server log")

    return run


def _matcher_sets(values: Sequence[str], *, dotall: bool) -> list[list[LabelMatcher]]:
    sets = []
    for text in values:
        try:
            node = parse(text, dotall=dotall)
        except BadQueryError as e:
            raise ParamError("match[]", str(e)) from e
        if not isinstance(node, VectorSel):
            raise ParamError("match[]", f"1:1: parse error: {text!r} is not a series selector")
        sets.append(list(node.matchers))
    return sets


def _range(params: _Params) -> tuple[int, int]:
    start_text, end_text = params.get("start"), params.get("end")
    start = parse_time("start", start_text) if start_text else MIN_TIME_MS
    end = parse_time("end", end_text) if end_text else MAX_TIME_MS
    return start, end


class PrometheusApi:
    """The routes of the Prometheus HTTP query API over ``source``, one method per route.

    The listing routes read the bounded pages of ``source``, so an answer never holds more than
    ``settings.max_series_listed`` items and says so with a warning when it was cut.
    """

    def __init__(
        self,
        *,
        source: PagedSeriesSource,
        settings: PrometheusApiSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._source = source
        self._settings = settings
        self._clock = clock

    def routes(self) -> list[Route]:
        both = ["GET", "POST"]
        return [
            Route("/api/v1/query", guarded(self.query), methods=both),
            Route("/api/v1/query_range", guarded(self.query_range), methods=both),
            Route("/api/v1/series", guarded(self.series), methods=both),
            Route("/api/v1/labels", guarded(self.labels), methods=both),
            Route("/api/v1/label/{name}/values", guarded(self.label_values), methods=["GET"]),
            Route("/api/v1/metadata", guarded(self.metadata), methods=["GET"]),
        ]

    async def query(self, request: Request) -> Response:
        """``/api/v1/query``: ``query`` at ``time`` (default now)."""
        params = await _params(request)
        text = params.get("time")
        at_ms = parse_time("time", text) if text else round(self._clock() * 1000)
        timeout = self._timeout(params)
        result = await asyncio.wait_for(
            evaluate_instant(
                params.get("query"),
                time_ms=at_ms,
                source=self._source,
                settings=self._settings.query,
                timeout_s=timeout,
            ),
            timeout,
        )
        return _json(envelope_ok(result_json(result), result.warnings))

    async def query_range(self, request: Request) -> Response:
        """``/api/v1/query_range``: ``query`` at ``start, start + step, ... <= end``."""
        params = await _params(request)
        start = parse_time("start", params.get("start"))
        end = parse_time("end", params.get("end"))
        if end < start:
            raise ParamError("end", "end timestamp must not be before start time")
        step = parse_duration_ms("step", params.get("step"))
        if step <= 0:
            raise ParamError(
                "step",
                "zero or negative query resolution step widths are not accepted. "
                "Try a positive integer",
            )
        if (end - start) // step > MAX_POINTS_PER_SERIES:
            return _error("bad_data", RESOLUTION_ERROR)
        timeout = self._timeout(params)
        result = await asyncio.wait_for(
            evaluate_range(
                params.get("query"),
                start_ms=start,
                end_ms=end,
                step_ms=step,
                source=self._source,
                settings=self._settings.query,
                timeout_s=timeout,
            ),
            timeout,
        )
        return _json(envelope_ok(result_json(result), result.warnings))

    async def series(self, request: Request) -> Response:
        """``/api/v1/series``: label sets of the series matching any ``match[]``."""
        params = await _params(request)
        matches = params.getlist("match[]")
        if not matches:
            return _error("bad_data", "no match[] parameter provided")
        start, end = _range(params)
        limit = self._limit(params)
        sets = _matcher_sets(matches, dotall=self._settings.query.prometheus3)
        page = await self._source.series(sets, start, end, limit)
        found = [tuple(sorted(d.items())) for d in page.items[:limit]]
        warnings = _cut(limit + 1 if page.truncated else len(found), limit, "series")
        body = "[" + ",".join(_dict_json(labels) for labels in found) + "]"
        return _json(envelope_ok(body, warnings))

    async def labels(self, request: Request) -> Response:
        """``/api/v1/labels``: label names, of the series matching ``match[]`` if given."""
        params = await _params(request)
        start, end = _range(params)
        sets = _matcher_sets(params.getlist("match[]"), dotall=self._settings.query.prometheus3)
        limit = self._limit(params)
        page = await self._source.label_names_page(sets, start, end, limit)
        return self._listing(page, limit)

    async def label_values(self, request: Request) -> Response:
        """``/api/v1/label/<name>/values``: values of one label."""
        name = request.path_params["name"]
        if not _LABEL_NAME.match(name):
            return _error("bad_data", f'invalid label name: "{name}"')
        params = await _params(request)
        start, end = _range(params)
        sets = _matcher_sets(params.getlist("match[]"), dotall=self._settings.query.prometheus3)
        limit = self._limit(params)
        page = await self._source.label_values_page(name, sets, start, end, limit)
        return self._listing(page, limit)

    async def metadata(self, request: Request) -> Response:
        """``/api/v1/metadata``: type, help and unit per metric family name."""
        params = await _params(request)
        limit = parse_limit(params.get("limit"))
        metric = params.get("metric") or None
        page = await self._source.metadata(metric=metric, limit=limit)
        out: dict[str, list[dict[str, str]]] = {}
        for r in page.items:
            out.setdefault(r.name, []).append(
                {"type": r.type.value, "help": r.help, "unit": r.unit}
            )
        warnings = ["results truncated: more metric names matched"] if page.truncated else []
        return _json(envelope_ok(json.dumps(out), warnings))

    def _timeout(self, params: _Params) -> float:
        """The request's ``timeout``, never beyond the configured one."""
        default = self._settings.query.timeout_s
        text = params.get("timeout")
        if not text:
            return default
        ms = parse_duration_ms("timeout", text)
        return min(default, ms / 1000) if ms > 0 else default

    def _limit(self, params: _Params) -> int:
        asked = parse_limit(params.get("limit"))
        most = self._settings.max_series_listed
        return min(asked or most, most)

    @staticmethod
    def _listing(page: Page[str], limit: int) -> Response:
        total = limit + 1 if page.truncated else len(page.items)
        return _json(envelope_ok(_list_json(page.items[:limit]), _cut(total, limit, "values")))


def _cut(total: int, limit: int, what: str) -> list[str]:
    if total > limit:
        return [f"results truncated: {total} {what} matched, only the first {limit} are returned"]
    return []


def _dict_json(labels: tuple[tuple[str, str], ...]) -> str:
    return json.dumps(dict(labels), separators=(",", ":"))


def _list_json(items: list[str]) -> str:
    return json.dumps(items)

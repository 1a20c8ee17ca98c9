"""The Prometheus API routes Grafana's Prometheus data source calls besides the query routes.

Grafana (``pkg/promlib`` and ``packages/grafana-prometheus``) reads ``/status/buildinfo``
to detect the flavour and version of the server, probes ``/query_exemplars`` to decide
whether to offer exemplars, loads ``/rules`` for recording-rule expansion and, in the
alerting UI, ``/rules`` and ``/alerts``; the query editor may call ``/format_query``. Each
route answers as Prometheus 2.42 does (same parameters, envelope and error texts) so
the data source works unchanged:

- buildinfo says ``version`` 2.42.0 and has no ``features`` field: Grafana then treats
  us as plain Prometheus with the ruler API off (a ``features`` map would mean Mimir and
  make Grafana call the ruler config API, which we do not serve). 2.42 is the
  Prometheus whose answers our differential tests compare against, not a newer one whose
  additions we lack; it is a valid semver that Grafana's version detection maps to its
  "2.42.x" entry, and it is >= 2.24, the one version gate Grafana has
  (``hasLabelsMatchAPISupport``), so the metric and label browsers use ``/labels`` and
  ``/label/<name>/values`` with ``match[]`` (which we serve) instead of ``/series`` scans.
- query_exemplars validates like Prometheus and returns no exemplars: the store keeps none.
- rules and alerts are empty: meshfed evaluates no rules.
- format_query pretty-prints with promql-parser, a port of Prometheus's printer.
"""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Iterator
from typing import Any

import promql_parser as pp
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from collectors._core.errors import ParamError
from collectors.api.prom_params import (
    MAX_TIME_MS,
    MIN_TIME_MS,
    envelope_error,
    envelope_ok,
    parse_time,
)
from collectors.api.prometheus import guarded

PROMETHEUS_COMPAT_VERSION = "2.42.0"
"""The Prometheus version ``/api/v1/status/buildinfo`` reports (see the module docstring)."""

_MAX_WALK = 100_000
"""Nodes of one query's syntax tree visited at most when looking for selectors."""


def _meshfed_version() -> str:
    try:
        return importlib.metadata.version("meshfed")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _json(body: str, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type="application/json")


def _bad_data(message: str) -> Response:
    return _json(envelope_error("bad_data", message), 400)


async def _form_value(request: Request, name: str) -> str:
    """Go's ``r.FormValue``: a url-encoded POST body first, then the URL query."""
    if request.method == "POST" and request.headers.get("content-type", "").startswith(
        "application/x-www-form-urlencoded"
    ):
        form = await request.form()
        value = form.get(name)
        if isinstance(value, str):
            return value
    return request.query_params.get(name, "")


def _children(node: Any) -> Iterator[Any]:
    """The sub-expressions of a promql-parser node (selectors have none)."""
    if isinstance(node, pp.BinaryExpr):
        yield node.lhs
        yield node.rhs
    elif isinstance(node, pp.AggregateExpr):
        yield node.expr
        if node.param is not None:
            yield node.param
    elif isinstance(node, pp.Call):
        yield from node.args
    elif isinstance(node, pp.ParenExpr | pp.UnaryExpr | pp.SubqueryExpr):
        yield node.expr


def has_selector(expr: Any) -> bool:
    """Whether ``expr`` holds a series selector (Prometheus's ``ExtractSelectors`` non-empty)."""
    stack, seen = [expr], 0
    while stack and seen < _MAX_WALK:
        node = stack.pop()
        seen += 1
        if isinstance(node, pp.VectorSelector | pp.MatrixSelector):
            return True
        stack.extend(_children(node))
    return False


def _build_info() -> str:
    return json.dumps(
        {
            "version": PROMETHEUS_COMPAT_VERSION,
            "revision": f"meshfed-{_meshfed_version()}",
            "branch": "meshfed",
            "buildUser": "meshfed",
            "buildDate": "",
            "goVersion": "none (meshfed is written in Python)",
        },
        separators=(",", ":"),
    )


class GrafanaApi:
    """Routes under ``/api/v1``: status/buildinfo, query_exemplars, rules, alerts,
    format_query; one method per route."""

    def __init__(self) -> None:
        self._build_info = _build_info()

    def routes(self) -> list[Route]:
        both = ["GET", "POST"]
        return [
            Route("/api/v1/status/buildinfo", guarded(self.buildinfo), methods=["GET"]),
            Route("/api/v1/query_exemplars", guarded(self.query_exemplars), methods=both),
            Route("/api/v1/rules", guarded(self.rules), methods=["GET"]),
            Route("/api/v1/alerts", guarded(self.alerts), methods=["GET"]),
            Route("/api/v1/format_query", guarded(self.format_query), methods=both),
        ]

    async def buildinfo(self, request: Request) -> Response:
        return _json(envelope_ok(self._build_info))

    async def query_exemplars(self, request: Request) -> Response:
        start_text = await _form_value(request, "start")
        end_text = await _form_value(request, "end")
        start = parse_time("start", start_text) if start_text else MIN_TIME_MS
        end = parse_time("end", end_text) if end_text else MAX_TIME_MS
        if end < start:
            return _bad_data("end timestamp must not be before start timestamp")
        try:
            expr = pp.parse(await _form_value(request, "query"))
        except ValueError as e:
            return _bad_data(f"parse error: {e}")
        if not has_selector(expr):
            return Response(status_code=204)  # Prometheus: no data, no body
        return _json(envelope_ok("[]"))

    async def rules(self, request: Request) -> Response:
        kind = request.query_params.get("type", "").lower()
        if kind not in ("", "alert", "record"):
            raise ParamError("type", f'not supported value "{kind}"')
        return _json(envelope_ok('{"groups":[]}'))

    async def alerts(self, request: Request) -> Response:
        return _json(envelope_ok('{"alerts":[]}'))

    async def format_query(self, request: Request) -> Response:
        try:
            expr = pp.parse(await _form_value(request, "query"))
        except ValueError as e:
            raise ParamError("query", f"parse error: {e}") from e
        return _json(envelope_ok(json.dumps(expr.prettify())))

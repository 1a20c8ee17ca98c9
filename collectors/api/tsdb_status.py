"""``GET /api/v1/status/tsdb``: the store's cardinality, in Prometheus's shape and more.

Prometheus's own route is what Grafana and people already read for "which metric has too
many series": ``headStats``, ``seriesCountByMetricName``, ``seriesCountByLabelValuePair``
and ``labelValueCountByLabelName``, each the ``limit`` largest (default 10, as Prometheus).
meshfed adds, under ``meshfed``, what a federation needs and Prometheus has not: series per
tenant (the ``limits.tenant_label`` value, the sender's cluster), the configured series caps
and the new series refused over them, per tenant and reason. The figures are the store's
(every collector writing into one Redis sees the same), not one process's.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from collectors.api.prom_params import envelope_ok, parse_limit
from collectors.api.prometheus import guarded
from collectors.store.cardinality import TsdbStatus

DEFAULT_LIMIT = 10
MAX_LIMIT = 10_000


@runtime_checkable
class TsdbStatusSource(Protocol):
    """What the route reads (``MetricsStore`` is one)."""

    async def tsdb_status(self, *, top: int = DEFAULT_LIMIT) -> TsdbStatus: ...


class TsdbStatusApi:
    """The ``/api/v1/status/tsdb`` route over one store."""

    def __init__(self, *, source: TsdbStatusSource) -> None:
        self._source = source

    def routes(self) -> list[Route]:
        return [Route("/api/v1/status/tsdb", guarded(self.status), methods=["GET"])]

    async def status(self, request: Request) -> Response:
        """``?limit=N`` entries per list (1..10000, default 10)."""
        limit = min(parse_limit(request.query_params.get("limit")) or DEFAULT_LIMIT, MAX_LIMIT)
        status = await self._source.tsdb_status(top=limit)
        warnings = (
            ["label pairs over limits.max_label_values per shard were left out of the counts"]
            if status.truncated
            else []
        )
        return Response(envelope_ok(status.to_json(), warnings), media_type="application/json")

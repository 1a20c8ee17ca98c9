"""PromQL over a ``SeriesSource``: parse (promql-parser), plan, fetch once, evaluate purely.

``evaluate_instant`` and ``evaluate_range`` are the whole public surface; the HTTP API
formats their results. Semantics follow Prometheus 2.42 (lookback delta, stale markers,
extrapolated rates, vector matching), checked by a differential test against Prometheus.
The engine raises subclasses of ``QueryError`` from the collectors' exception tree
(``collectors._core.errors``).
"""

from collectors.promql.engine import QuerySettings, evaluate_instant, evaluate_range
from collectors.promql.labels import Labels
from collectors.promql.values import (
    MatrixResult,
    QueryResult,
    ScalarResult,
    StringResult,
    VectorResult,
)

__all__ = [
    "Labels",
    "MatrixResult",
    "QueryResult",
    "QuerySettings",
    "ScalarResult",
    "StringResult",
    "VectorResult",
    "evaluate_instant",
    "evaluate_range",
]

"""PromQL over a ``SeriesSource``: parse (promql-parser), plan, fetch once, evaluate purely.

``evaluate_instant`` and ``evaluate_range`` are the whole public surface; the HTTP API
formats their results. Semantics follow Prometheus 2.42 (lookback delta, stale markers,
extrapolated rates, vector matching), checked by a differential test against Prometheus.
"""

from collectors.promql.engine import QuerySettings, evaluate_instant, evaluate_range
from collectors.promql.errors import (
    BadQueryError,
    QueryError,
    QueryExecutionError,
    QueryTimeoutError,
)
from collectors.promql.values import (
    Labels,
    MatrixResult,
    QueryResult,
    ScalarResult,
    StringResult,
    VectorResult,
)

__all__ = [
    "BadQueryError",
    "Labels",
    "MatrixResult",
    "QueryError",
    "QueryExecutionError",
    "QueryResult",
    "QuerySettings",
    "QueryTimeoutError",
    "ScalarResult",
    "StringResult",
    "VectorResult",
    "evaluate_instant",
    "evaluate_range",
]

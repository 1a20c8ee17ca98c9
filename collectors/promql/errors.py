"""Query failures, split the way Prometheus's HTTP API reports them.

A query that can never succeed as written (parse error, unsupported function, bad
parameter) is ``bad_data`` (400); a query that parsed but failed while evaluating (vector
matching cardinality, too many samples) is ``execution`` (422). Both are permanent: the
same query on the same data fails the same way, so the API must never answer them with 5xx.
"""

from __future__ import annotations

from collectors._core.errors import PermanentError, RetryableError


class QueryError(PermanentError):
    """Base of every error the engine raises on purpose."""


class BadQueryError(QueryError):
    """The query or a parameter is malformed or unsupported (Prometheus ``bad_data``, 400)."""


class QueryExecutionError(QueryError):
    """The query failed during evaluation (Prometheus ``execution``, 422)."""


class QueryTimeoutError(RetryableError):
    """Evaluation ran past its deadline (Prometheus ``timeout``, 503)."""

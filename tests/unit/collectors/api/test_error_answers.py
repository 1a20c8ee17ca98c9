"""How each query API answers the collectors' exception tree: status, envelope, exact text.

The Prometheus API speaks Prometheus's envelope and error types; the trace and log APIs
answer their own JSON error. Both read the one ``ParamError``, each in its own wording.
No sockets: the guards are called with a handler that raises.
"""

from __future__ import annotations

import json
from typing import Any, cast

import pytest
from starlette.requests import Request
from starlette.responses import Response

from collectors._core.errors import (
    BadQueryError,
    ChunkError,
    CollectorError,
    LimitExceededError,
    ParamError,
    PermanentError,
    QueryExecutionError,
    QueryTimeoutError,
    RetryableError,
    StoreUnavailableError,
    TooLargeError,
    UnsupportedMediaError,
)
from collectors.api import prometheus, traces

_REQUEST = cast(Request, Request({"type": "http", "path": "/api/v1/query", "headers": []}))


async def _answer(guard: Any, error: Exception) -> Response:
    async def handler(request: Request) -> Response:
        raise error

    response: Response = await guard(handler)(_REQUEST)
    return response


@pytest.mark.parametrize(
    ("error", "status", "body"),
    [
        pytest.param(
            ParamError("time", 'cannot parse "x" to a valid timestamp'),
            400,
            {
                "status": "error",
                "errorType": "bad_data",
                "error": 'invalid parameter "time": cannot parse "x" to a valid timestamp',
            },
            id="param",
        ),
        pytest.param(
            BadQueryError("parse error: unexpected end of input"),
            400,
            {
                "status": "error",
                "errorType": "bad_data",
                "error": 'invalid parameter "query": parse error: unexpected end of input',
            },
            id="bad-query",
        ),
        pytest.param(
            QueryExecutionError("many-to-many matching not allowed"),
            422,
            {
                "status": "error",
                "errorType": "execution",
                "error": "many-to-many matching not allowed",
            },
            id="execution",
        ),
        pytest.param(
            QueryTimeoutError("slow"),
            503,
            {
                "status": "error",
                "errorType": "timeout",
                "error": "query timed out in expression evaluation",
            },
            id="timeout",
        ),
        pytest.param(
            StoreUnavailableError("Redis unavailable during select: refused"),
            503,
            {
                "status": "error",
                "errorType": "unavailable",
                "error": "store unavailable: Redis unavailable during select: refused",
            },
            id="store-unavailable",
        ),
        pytest.param(
            LimitExceededError("more than limits.max_series_per_query series"),
            422,
            {
                "status": "error",
                "errorType": "execution",
                "error": "more than limits.max_series_per_query series",
            },
            id="store-limit",
        ),
        pytest.param(
            ChunkError("corrupt chunk body"),
            500,
            {
                "status": "error",
                "errorType": "internal",
                "error": "internal error; see the server log",
            },
            id="corrupt-chunk",
        ),
    ],
)
async def test_prometheus_api_answers(error: Exception, status: int, body: dict[str, str]) -> None:
    response = await _answer(prometheus.guarded, error)
    assert response.status_code == status
    assert json.loads(response.body) == body


@pytest.mark.parametrize(
    ("error", "status", "body"),
    [
        pytest.param(
            ParamError("limit", "'x' is not an integer"),
            400,
            {
                "status": "error",
                "error": "invalid parameter 'limit': 'x' is not an integer",
                "parameter": "limit",
            },
            id="param",
        ),
        pytest.param(
            ParamError("it's", "unknown parameter"),
            400,
            {
                "status": "error",
                "error": 'invalid parameter "it\'s": unknown parameter',
                "parameter": "it's",
            },
            id="param-with-quote",
        ),
        pytest.param(
            PermanentError("log record cannot be encoded"),
            400,
            {"status": "error", "error": "log record cannot be encoded"},
            id="permanent",
        ),
        pytest.param(
            StoreUnavailableError("Redis unavailable during search: refused"),
            503,
            {"status": "error", "error": "Redis unavailable during search: refused"},
            id="store-unavailable",
        ),
    ],
)
async def test_trace_and_log_api_answers(
    error: Exception, status: int, body: dict[str, str]
) -> None:
    response = await _answer(traces.guarded, error)
    assert response.status_code == status
    assert json.loads(response.body) == body
    if status == 503:
        assert response.headers["Retry-After"] == "1"


@pytest.mark.parametrize(
    ("error", "status"),
    [
        pytest.param(PermanentError("bad"), 400, id="permanent"),
        pytest.param(PermanentError("bad", status=422), 422, id="given"),
        pytest.param(LimitExceededError("big"), 413, id="limit"),
        pytest.param(TooLargeError("big"), 413, id="too-large"),
        pytest.param(UnsupportedMediaError("zstd"), 415, id="media"),
        pytest.param(ParamError("step", "bad"), 400, id="param"),
        pytest.param(QueryExecutionError("bad"), 422, id="execution"),
    ],
)
def test_permanent_errors_carry_their_status(error: PermanentError, status: int) -> None:
    assert error.status == status


def test_retryable_errors_carry_retry_after() -> None:
    assert StoreUnavailableError("down").retry_after is None
    error = RetryableError("busy", retry_after=2.5)
    assert error.retry_after == 2.5
    assert str(error) == "busy"


def test_a_corrupt_chunk_is_neither_retryable_nor_permanent() -> None:
    error = ChunkError("corrupt chunk body")
    assert isinstance(error, CollectorError)
    assert isinstance(error, ValueError)
    assert not isinstance(error, RetryableError | PermanentError)

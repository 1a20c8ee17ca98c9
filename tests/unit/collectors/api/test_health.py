"""``/-/healthy`` fails only when the process cannot recover by itself; ``/-/ready`` is apart.

In-process (httpx's ASGI transport, no sockets), over an in-memory metrics source.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import httpx
import pytest

from collectors.api.app import Liveness, build_app
from collectors.api.prometheus import PrometheusApiSettings
from collectors.promql.source import PagedSeriesSource
from collectors.store.logs import LogStore
from collectors.store.traces import TraceStore
from tests.helpers.memsource import MemorySource


@dataclass
class MemoryStore:
    """A ``QueryStore`` with metrics only."""

    metrics: PagedSeriesSource
    traces: TraceStore | None = None
    logs: LogStore | None = None


async def _get(liveness: Liveness | None, path: str) -> httpx.Response:
    store = MemoryStore(metrics=cast(PagedSeriesSource, MemorySource()))
    app = build_app(store=store, settings=PrometheusApiSettings(), liveness=liveness)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://meshfed") as client:
        return await client.get(path)


@pytest.mark.parametrize(
    ("liveness", "path", "status", "text"),
    [
        pytest.param(None, "/-/healthy", 200, "healthy", id="no-liveness-check"),
        pytest.param(lambda: None, "/-/healthy", 200, "healthy", id="recoverable"),
        pytest.param(
            lambda: "3 restarts in a row failed",
            "/-/healthy",
            503,
            "unhealthy: 3 restarts in a row failed",
            id="unrecoverable-names-why",
        ),
        pytest.param(
            lambda: "3 restarts in a row failed", "/-/ready", 200, "ready", id="ready-is-apart"
        ),
        pytest.param(lambda: "gone", "/", 200, "meshfed query API", id="root-is-apart"),
    ],
)
async def test_liveness(liveness: Liveness | None, path: str, status: int, text: str) -> None:
    response = await _get(liveness, path)
    assert (response.status_code, response.text.strip()) == (status, text)

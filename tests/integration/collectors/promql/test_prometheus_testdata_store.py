"""Prometheus 2.42's PromQL test files through the real store and the HTTP query API.

The unit run (tests/unit/collectors/promql/test_prometheus_testdata.py) proves the engine
on every case over an in-memory source. This run sends a subset through what the engine
does not see there: samples written to the embedded Redis store (chunk encoding of NaN,
Inf and stale markers, the label index), selectors planned by ``metrics_model`` (regex and
negative matchers against the index), and answers formatted and parsed as the Prometheus
JSON API (``/api/v1/query`` and ``query_range`` over httpx's ASGI transport, errors as
400/422). The subset is the files about selection and values plus every case with a regex
matcher; the whole suite this way would spend minutes reloading Redis for little more.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from starlette.applications import Starlette

from collectors._core.model import Sample
from collectors.api.prometheus import PrometheusApi, PrometheusApiSettings
from collectors.store.config import RedisSettings, StoreSettings
from collectors.store.store import TelemetryStore
from tests.helpers.promql_testdata import (
    Answer,
    Case,
    Labels,
    Load,
    Points,
    QueryRefusedError,
    load_cases,
    promql_testdata_dir,
    run_case,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

FILES = ("selectors.test", "staleness.test", "literals.test", "histograms.test",
         "collision.test", "at_modifier.test")  # fmt: skip


def _subset() -> list[object]:
    directory = promql_testdata_dir()
    if not directory.is_dir():
        return [pytest.param(None, id="testdata-missing")]
    cases = [
        c
        for c in load_cases(directory)
        if c.id.split(":")[0] in FILES or "=~" in c.query or "!~" in c.query
    ]
    return [pytest.param(c, id=c.id) for c in cases]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def store(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TelemetryStore]:
    data_dir: Path = tmp_path_factory.mktemp("testdata") / "redis"
    s = TelemetryStore(settings=StoreSettings(redis=RedisSettings(url=None, data_dir=data_dir)))
    await s.start()
    yield s
    await s.shutdown()


_LOADED: list[tuple[int, ...]] = []


async def _load(store: TelemetryStore, loads: tuple[Load, ...]) -> None:
    """Make the store hold exactly ``loads`` (flushed and rewritten when they change)."""
    key = tuple(id(load) for load in loads)
    if _LOADED and _LOADED[-1] == key:
        return
    client: Any = store.connection.client
    await client.flushall()
    samples = [
        Sample(
            name=labels["__name__"],
            labels={k: v for k, v in labels.items() if k != "__name__"},
            timestamp_ms=t,
            value=v,
        )
        for load in loads
        for labels, points in load.series
        for t, v in points
    ]
    for i in range(0, len(samples), 5000):
        result = await store.write_samples(samples[i : i + 5000])
        assert result.accepted == len(samples[i : i + 5000]), result
    _LOADED.append(key)


def _labels(metric: dict[str, str]) -> Labels:
    return tuple(sorted(metric.items()))


async def _get(client: httpx.AsyncClient, path: str, params: dict[str, str]) -> Any:
    r = await client.get(path, params=params)
    if r.status_code in (400, 422):
        raise QueryRefusedError(r.text)
    assert r.status_code == 200, f"{path} {params}: {r.status_code} {r.text}"
    return json.loads(r.text)["data"]


@pytest.mark.parametrize("case", _subset())
async def test_case(store: TelemetryStore, case: Case | None) -> None:
    if case is None:
        pytest.fail(f"{promql_testdata_dir()} is missing: run scripts/fetch-promql-testdata.sh")
    await _load(store, case.loads)
    api = PrometheusApi(source=store.metrics, settings=PrometheusApiSettings())

    transport = httpx.ASGITransport(app=Starlette(routes=api.routes()))
    async with httpx.AsyncClient(transport=transport, base_url="http://meshfed") as client:

        async def instant(query: str, time_ms: int) -> Answer:
            data = await _get(client, "/api/v1/query", {"query": query, "time": _s(time_ms)})
            if data["resultType"] == "scalar":
                return Answer(scalar=float(data["result"][1]))
            if data["resultType"] != "vector":
                return Answer(other=data["resultType"])
            return Answer(
                samples=[(_labels(s["metric"]), float(s["value"][1])) for s in data["result"]]
            )

        async def range_query(
            query: str, start_ms: int, end_ms: int, step_ms: int
        ) -> list[tuple[Labels, Points]]:
            params = {"query": query, "start": _s(start_ms), "end": _s(end_ms), "step": "60"}
            assert step_ms == 60_000
            data = await _get(client, "/api/v1/query_range", params)
            return [
                (_labels(s["metric"]), [(round(t * 1000), float(v)) for t, v in s["values"]])
                for s in data["result"]
            ]

        problems = await run_case(case, instant, range_query)
    assert not problems, "\n".join(problems)


def _s(ms: int) -> str:
    return f"{ms / 1000:.3f}"

"""Prometheus 2.42's own PromQL test files, run against our engine over the in-memory source.

Every ``eval`` of ``promql/testdata/*.test`` (module v0.42.0, linked by
``scripts/fetch-promql-testdata.sh``) is one test case, named ``<file>:<line>``. The engine
is the whole subject here, so it reads an in-memory ``SeriesSource``: the ~560 cases and
their ~6,000 evaluations then take seconds. A subset also runs through the Redis store and
the HTTP API (tests/integration/collectors/promql/test_prometheus_testdata_store.py).
Cases we do not pass are listed in ``EXCLUDED`` with the reason (and in docs/promql.md).
"""

from __future__ import annotations

import pytest

from collectors._core.errors import QueryError
from collectors.promql import (
    MatrixResult,
    QuerySettings,
    ScalarResult,
    VectorResult,
    evaluate_instant,
    evaluate_range,
)
from tests.helpers.memsource import MemorySource
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

SETTINGS = QuerySettings()
EXCLUDED: dict[str, str] = {}
"""Case id -> why we differ from Prometheus 2.42 on purpose (docs/promql.md lists them)."""


def _params() -> list[object]:
    directory = promql_testdata_dir()
    if not directory.is_dir():
        return [pytest.param(None, id="testdata-missing")]
    return [
        pytest.param(
            case,
            id=case.id,
            marks=[pytest.mark.xfail(reason=EXCLUDED[case.id], strict=True)]
            if case.id in EXCLUDED
            else [],
        )
        for case in load_cases(directory)
    ]


_SOURCES: dict[tuple[int, ...], MemorySource] = {}


def _source(loads: tuple[Load, ...]) -> MemorySource:
    key = tuple(id(load) for load in loads)
    src = _SOURCES.get(key)
    if src is None:
        src = _SOURCES[key] = MemorySource()
        for load in loads:
            for labels, points in load.series:
                src.add(labels, points)
    return src


@pytest.mark.parametrize("case", _params())
async def test_case(case: Case | None) -> None:
    if case is None:
        pytest.fail(f"{promql_testdata_dir()} is missing: run scripts/fetch-promql-testdata.sh")
    source = _source(case.loads)

    async def instant(query: str, time_ms: int) -> Answer:
        try:
            result = await evaluate_instant(
                query, time_ms=time_ms, source=source, settings=SETTINGS
            )
        except QueryError as e:
            raise QueryRefusedError(str(e)) from e
        if isinstance(result, ScalarResult):
            return Answer(scalar=result.value)
        if isinstance(result, VectorResult):
            return Answer(samples=list(result.samples))
        return Answer(other=type(result).__name__)

    async def range_query(
        query: str, start_ms: int, end_ms: int, step_ms: int
    ) -> list[tuple[Labels, Points]]:
        try:
            result = await evaluate_range(
                query,
                start_ms=start_ms,
                end_ms=end_ms,
                step_ms=step_ms,
                source=source,
                settings=SETTINGS,
            )
        except QueryError as e:
            raise QueryRefusedError(str(e)) from e
        assert isinstance(result, MatrixResult)
        return [
            (s.labels, list(zip(s.timestamps_ms, s.values, strict=True))) for s in result.series
        ]

    problems = await run_case(case, instant, range_query)
    assert not problems, "\n".join(problems)

"""No query text can make the query API answer 5xx: Hypothesis over PromQL and regexes.

The query routes run in-process (httpx's ASGI transport, no sockets) over an in-memory
source. Three kinds of generated input:

- any text as ``query``: 200 or 400 (``bad_data``), or 422 when it parses and fails as
  Prometheus fails it (the ``execution`` type);
- a regex, used as a label matcher: 200 or 400 only (RE2 semantics, or refused);
- PromQL built from the grammar (selectors with generated regexes, every function and
  aggregation, binary operators with matching modifiers, ``@`` and offsets at any time,
  subqueries): 200, 400 or 422.

A 5xx would be a crash of the engine (or a panic in the parser's binding) leaking out.
Found this way and fixed: ``@`` before 1970 (a panic in promql-parser's binding),
``round(x, 0)`` (a division by zero), ``log2(-Inf)`` (a literal the parser does not
type-check), ``[100y:1s]`` subqueries (memory), non-ASCII text (the pre-parser).
"""

from __future__ import annotations

import json
import os
from typing import cast

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from collectors.api.prometheus import PrometheusApi, PrometheusApiSettings
from collectors.promql import QuerySettings
from collectors.promql.ast import SUPPORTED_AGGREGATIONS, SUPPORTED_FUNCTIONS
from collectors.promql.source import PagedSeriesSource
from tests.helpers.memsource import MemorySource
from tests.helpers.prometheus_remote import STALE_NAN

FAST = settings(
    max_examples=int(os.environ.get("MESHFED_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
"""300 examples per test keep ``make test`` fast; ``MESHFED_FUZZ_EXAMPLES=20000`` hunts longer."""


def _app() -> Starlette:
    src = MemorySource()
    for i, job in enumerate(("api", "web", "Ä\n")):
        points = [(t * 15_000, float(t * (i + 1))) for t in range(40)]
        src.add({"__name__": "up", "job": job, "instance": f"i{i}"}, points)
    src.add({"__name__": "g", "a": "x"}, [(0, float("nan")), (15_000, 1.0), (30_000, STALE_NAN)])
    for le in ("0.1", "1", "+Inf", "x"):
        src.add({"__name__": "h_bucket", "le": le}, [(t * 15_000, t * 2.0) for t in range(40)])
    limits = PrometheusApiSettings(query=QuerySettings(max_samples=200_000, timeout_s=5.0))
    api = PrometheusApi(source=cast(PagedSeriesSource, src), settings=limits)
    return Starlette(routes=api.routes())


APP = _app()


async def _status(query: str, *, range_query: bool = False) -> int:
    transport = httpx.ASGITransport(app=APP)
    async with httpx.AsyncClient(transport=transport, base_url="http://meshfed") as client:
        if range_query:
            params = {"query": query, "start": "0", "end": "600", "step": "30"}
            r = await client.get("/api/v1/query_range", params=params)
        else:
            r = await client.get("/api/v1/query", params={"query": query, "time": "300"})
    body = json.loads(r.text)
    assert body["status"] == ("success" if r.status_code == 200 else "error"), r.text
    return r.status_code


REGEX_ALPHABET = "ab.*+?|()[]{}^$\\-:,0123456789imsUPpzZdDwWsSbBx<>!=&~é\n"
regexes = st.text(alphabet=REGEX_ALPHABET, max_size=14)


def _quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


durations = st.sampled_from(["1ms", "15s", "1m", "5m", "1h", "0s", "1y"])
times = st.one_of(
    st.integers(min_value=-(10**12), max_value=10**12).map(str),
    st.sampled_from(["-1e18", "9.2e18", "1e300", "Inf", "NaN", "-0.5", "0x10", "start()"]),
)
selectors = st.builds(
    lambda name, label, op, rx, off, at: f"{name}{{{label}{op}{_quoted(rx)}}}{off}{at}",
    st.sampled_from(["up", "g", "h_bucket", "", "nope"]),
    st.sampled_from(["job", "le", "__name__", "a"]),
    st.sampled_from(["=", "!=", "=~", "!~"]),
    regexes,
    st.one_of(st.just(""), durations.map(lambda d: f" offset {d}"), st.just(" offset -5m")),
    st.one_of(st.just(""), times.map(lambda t: f" @ {t}")),
)
numbers = st.sampled_from(
    ["0", "1", "-1", "0.5", "2", "NaN", "Inf", "-Inf", "1e308", "3", "-0", "1e-320"]
)
strings = st.one_of(
    st.sampled_from(['"job"', '"le"', '"x"', '"$1"', '""', '"-"']), regexes.map(_quoted)
)
BINARY_OPS = ["+", "-", "*", "/", "%", "^", "atan2", "==", "!=", ">", "<", ">=", "<=",
              "and", "or", "unless", "> bool", "== bool"]  # fmt: skip
MODIFIERS = ["", " on()", " on(job)", " ignoring(job)", " on(job) group_left", " ignoring(le)"
             " group_right(job)", " on(instance) group_left(job)"]  # fmt: skip


SIGNATURES = {
    **dict.fromkeys(
        ["rate", "irate", "increase", "delta", "idelta", "changes", "resets", "deriv",
         "avg_over_time", "sum_over_time", "min_over_time", "max_over_time",
         "count_over_time", "last_over_time", "present_over_time", "stddev_over_time",
         "stdvar_over_time", "absent_over_time"], "m"),
    **dict.fromkeys(
        ["abs", "ceil", "floor", "sqrt", "ln", "log2", "log10", "exp", "sgn", "sort",
         "sort_desc", "absent", "scalar", "timestamp", "histogram_count", "histogram_sum",
         "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh",
         "acosh", "atanh", "deg", "rad", "year", "month", "day_of_month", "day_of_week",
         "day_of_year", "days_in_month", "hour", "minute"], "v"),
    "quantile_over_time": "sm", "predict_linear": "ms", "holt_winters": "mss",
    "double_exponential_smoothing": "mss", "histogram_quantile": "sv",
    "histogram_fraction": "ssv", "label_replace": "vqqqq", "label_join": "vqqqq",
    "round": "vs", "clamp": "vss", "clamp_min": "vs", "clamp_max": "vs", "vector": "s",
    "time": "", "pi": "",
}  # fmt: skip
"""Argument kinds per function: m range, v instant vector, s scalar, q string."""


def _typed_call(
    name: str, inner: st.SearchStrategy[str], ranges: st.SearchStrategy[str]
) -> st.SearchStrategy[str]:
    kinds = {"m": ranges, "v": inner, "s": st.one_of(numbers, inner.map(lambda e: f"scalar({e})")),
             "q": strings}  # fmt: skip
    parts = [kinds[k] for k in SIGNATURES[name]]
    return st.tuples(*parts).map(lambda args: f"{name}({', '.join(args)})")


def _expressions() -> st.SearchStrategy[str]:
    leaves = st.one_of(selectors, numbers, strings)

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        ranges = st.one_of(
            st.builds(lambda s, d: f"{s}[{d}]", selectors, durations),
            st.builds(
                lambda e, d, s: f"({e})[{d}:{s}]",
                inner,
                durations,
                st.sampled_from(["", "1m", "1s"]),
            ),
        )
        args = st.lists(st.one_of(inner, ranges), min_size=0, max_size=4)
        names = st.sampled_from(sorted(SUPPORTED_FUNCTIONS))
        typed = names.flatmap(lambda name: _typed_call(name, inner, ranges))
        return st.one_of(
            typed,
            typed,
            st.builds(lambda f, a: f"{f}({', '.join(a)})", names, args),
            st.builds(
                lambda op, g, a: f"{op} {g} ({', '.join(a)})",
                st.sampled_from(sorted(SUPPORTED_AGGREGATIONS)),
                st.sampled_from(["", "by (job)", "without (le)", "by ()"]),
                st.lists(inner, min_size=1, max_size=2),
            ),
            st.builds(
                lambda a, op, m, b: f"({a}) {op}{m} ({b})",
                inner, st.sampled_from(BINARY_OPS), st.sampled_from(MODIFIERS), inner,
            ),
            inner.map(lambda e: f"-({e})"),
        )  # fmt: skip

    return st.recursive(leaves, extend, max_leaves=6)


def test_every_function_is_generated() -> None:
    assert set(SIGNATURES) == SUPPORTED_FUNCTIONS


@FAST
@given(text=st.text(max_size=40))
async def test_any_text(text: str) -> None:
    assert await _status(text) in (200, 400, 422)


@FAST
@given(regex=regexes)
async def test_regex_matcher(regex: str) -> None:
    assert await _status(f"up{{job=~{_quoted(regex)}}}") in (200, 400)
    assert await _status(f"up{{job!~{_quoted(regex)}, job!=''}}") in (200, 400)


@FAST
@given(regex=regexes, template=st.sampled_from(["$1", "${1}x", "$name", "$$"]))
async def test_regex_label_replace(regex: str, template: str) -> None:
    query = f'label_replace(up, "dst", {_quoted(template)}, "job", {_quoted(regex)})'
    assert await _status(query) in (200, 400, 422)


@FAST
@given(query=_expressions(), range_query=st.booleans())
async def test_generated_promql(query: str, range_query: bool) -> None:
    assert await _status(query, range_query=range_query) in (200, 400, 422), query

"""An interpreter of Prometheus's own PromQL test files (``promql/testdata/*.test``).

The files come from the ``github.com/prometheus/prometheus`` Go module at the version our
differential test runs (2.42 = module v0.42.0); ``scripts/fetch-promql-testdata.sh`` puts
a link to the module cache's ``promql/testdata`` under ``$MESHFED_CACHE`` (they are never
copied into this repository). The format is promql/test.go's:

- ``load <step>`` then ``metric{labels} <values>`` lines: ``1 2 _ stale``, ``0+10x100``
  (101 values from 0 by 10), ``_x3`` (3 missing), ``1-1x4``;
- ``eval[_fail|_ordered] instant at <duration> <query>`` then the expected samples
  (``{labels} value``) or one scalar;
- ``clear`` drops every loaded series.

``run_case`` checks one ``eval`` as test.go's ``exec`` does: the instant result (order only
for ``eval_ordered``), the same query re-evaluated with ``@`` pinned to the evaluation time
at other times (``atModifierTestCases``), and each of them as a range query from ``t - 1m``
to ``t + 1m`` that must agree at ``t``. Values compare with test.go's ``almostEqual``.
"""

from __future__ import annotations

import ast as pyast
import math
import os
import re
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers.prometheus_promql_text import at_variants

PROMETHEUS_MODULE_VERSION = "v0.42.0"
Labels = tuple[tuple[str, str], ...]
Points = list[tuple[int, float]]
STALE: float = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
_EPSILON = 0.000001
_MIN_NORMAL = 2.2250738585072014e-308
_EVAL = re.compile(r"^eval(?:_(fail|ordered))?\s+instant\s+(?:at\s+(.+?))?\s+(.+)$")
_LOAD = re.compile(r"^load\s+(.+?)$")
_DURATION = re.compile(r"(\d+)(ms|y|w|d|h|m|s)")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000,
            "w": 604_800_000, "y": 31_536_000_000}  # fmt: skip
_NUM = r"(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[iI]nf|NaN|nan|stale)"  # 0x10: 0, 10 times
_ITEM = re.compile(rf"^(?:(?P<blank>_)|(?P<v>[+-]?{_NUM}))(?:(?P<d>[+-]{_NUM})?x(?P<n>\d+))?$")


def promql_testdata_dir() -> Path:
    """Where ``scripts/fetch-promql-testdata.sh`` linked the module's ``promql/testdata``."""
    cache = Path(os.environ.get("MESHFED_CACHE", Path.home() / ".cache" / "meshfed"))
    return cache / "promql-testdata" / PROMETHEUS_MODULE_VERSION


@dataclass(frozen=True)
class Load:
    step_ms: int
    series: list[tuple[dict[str, str], Points]]


@dataclass(frozen=True)
class Case:
    """One ``eval`` command and the loads in effect when it runs."""

    id: str
    query: str
    time_ms: int
    fail: bool
    ordered: bool
    scalar: float | None
    expected: dict[Labels, tuple[int, float]]
    loads: tuple[Load, ...] = field(repr=False)


def parse_duration(text: str) -> int:
    """Prometheus's ``model.ParseDuration`` in ms (``50m``, ``1h30m``, ``0``)."""
    if text == "0":
        return 0
    parts = _DURATION.findall(text)
    if not parts or "".join(a + b for a, b in parts) != text:
        raise ValueError(f"bad duration {text!r}")
    return sum(int(n) * _UNIT_MS[u] for n, u in parts)


def parse_number(text: str) -> float:
    """test.go's ``parseNumber`` (ParseInt base 0, else ParseFloat)."""
    t = text.strip()
    try:
        return float(int(t, 0))
    except ValueError:
        pass
    if t.lower().lstrip("+-") in ("inf", "infinity", "nan"):
        return float(t)
    if not re.fullmatch(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", t):
        raise ValueError(t)
    return float(t)


def _value(text: str) -> float:
    if text == "stale":
        return STALE
    return parse_number(text)


def parse_series(line: str) -> tuple[dict[str, str], list[float | None]]:
    """``parser.ParseSeriesDesc``: labels and the values (``None`` = omitted)."""
    labels, rest = _metric(line)
    values: list[float | None] = []
    for item in rest.split():
        m = _ITEM.match(item)
        if m is None:
            raise ValueError(f"bad series value {item!r} in {line!r}")
        count = int(m["n"]) if m["n"] else None
        if m["blank"]:
            values.extend([None] * (count if count is not None else 1))
            continue
        v = _value(m["v"])
        if count is None:
            values.append(v)
            continue
        step = _value(m["d"]) if m["d"] else 0.0
        for _ in range(count + 1):
            values.append(v)
            v += step
    return labels, values


def _metric(line: str) -> tuple[dict[str, str], str]:
    m = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line)
    labels: dict[str, str] = {}
    i = 0
    if m:
        labels["__name__"] = m.group()
        i = m.end()
    if i < len(line) and line[i] == "{":
        i += 1
        while True:
            while line[i] in " \t,":
                i += 1
            if line[i] == "}":
                i += 1
                break
            name = re.match(r"[a-zA-Z_][a-zA-Z0-9_]*", line[i:])
            assert name is not None, line
            i += name.end()
            while line[i] in " \t=":
                i += 1
            end = _quoted_end(line, i)
            labels[name.group()] = pyast.literal_eval(line[i:end])
            i = end
    return labels, line[i:]


def _quoted_end(line: str, i: int) -> int:
    quote, j = line[i], i + 1
    while line[j] != quote:
        j += 2 if line[j] == "\\" else 1
    return j + 1


def parse_file(path: Path) -> list[Case]:
    """Every ``eval`` of one file, in order, with the loads before it (since a ``clear``)."""
    lines = [
        "" if line.strip().startswith("#") else line.strip()
        for line in path.read_text().split("\n")
    ]
    cases: list[Case] = []
    loads: list[Load] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line:
            continue
        word = line.split()[0].lower()
        if word == "clear":
            loads = []
            continue
        block = []
        while i < len(lines) and lines[i]:
            block.append(lines[i])
            i += 1
        if word == "load":
            m = _LOAD.match(line)
            assert m is not None, line
            loads.append(_load(parse_duration(m.group(1)), block))
        elif word.startswith("eval"):
            cases.append(_eval(f"{path.name}:{i - len(block)}", line, block, tuple(loads)))
        else:
            raise ValueError(f"{path.name}: invalid command {line!r}")
    return cases


def _load(step_ms: int, block: list[str]) -> Load:
    series = []
    for line in block:
        labels, values = parse_series(line)
        points = [(k * step_ms, v) for k, v in enumerate(values) if v is not None]
        series.append((labels, points))
    return Load(step_ms, series)


def _eval(case_id: str, line: str, block: list[str], loads: tuple[Load, ...]) -> Case:
    m = _EVAL.match(line)
    assert m is not None, line
    mod, at, query = m.groups()
    scalar = None
    expected: dict[Labels, tuple[int, float]] = {}
    for pos, text in enumerate(block, start=1):
        try:
            scalar = parse_number(text)
            break
        except ValueError:
            pass
        labels, values = parse_series(text)
        assert len(values) == 1 and values[0] is not None, text
        expected[tuple(sorted(labels.items()))] = (pos, values[0])
    return Case(
        case_id, query, parse_duration(at or "0"), mod == "fail", mod == "ordered", scalar,
        expected, loads,
    )  # fmt: skip


def load_cases(directory: Path) -> list[Case]:
    return [c for path in sorted(directory.glob("*.test")) for c in parse_file(path)]


# --- running a case -------------------------------------------------------------------------


class QueryRefusedError(Exception):
    """The query was refused (400/422 or a ``QueryError``), as ``eval_fail`` expects."""


@dataclass(frozen=True)
class Answer:
    """An instant answer: a scalar, or samples in the order they came."""

    scalar: float | None = None
    samples: list[tuple[Labels, float]] = field(default_factory=list)
    other: str | None = None  # a string or matrix result type


Instant = Callable[[str, int], Awaitable[Answer]]
Range = Callable[[str, int, int, int], Awaitable[list[tuple[Labels, Points]]]]


def almost_equal(a: float, b: float) -> bool:
    """test.go's ``almostEqual``: NaN equals NaN, else a relative error below 1e-6."""
    if math.isnan(a) and math.isnan(b):
        return True
    if a == b:
        return True
    diff = abs(a - b)
    if a == 0 or b == 0 or diff < _MIN_NORMAL:
        return diff < _EPSILON * _MIN_NORMAL
    return diff / (abs(a) + abs(b)) < _EPSILON


def compare(case: Case, got: Answer, *, ordered: bool) -> str | None:
    """test.go's ``compareResult``: ``None`` when ``got`` is what ``case`` expects."""
    if got.other is not None:
        return f"unexpected {got.other} result"
    if got.scalar is not None:
        if case.scalar is None or not almost_equal(case.scalar, got.scalar):
            return f"expected scalar {case.scalar} but got {got.scalar}"
        return None
    seen = set()
    for pos, (labels, v) in enumerate(got.samples, start=1):
        want = case.expected.get(labels)
        if want is None:
            return f"unexpected metric {dict(labels)} in result"
        if ordered and want[0] != pos:
            return f"expected {dict(labels)} at position {want[0]} but was at {pos}"
        if not almost_equal(want[1], v):
            return f"expected {want[1]} for {dict(labels)} but got {v}"
        seen.add(labels)
    missing = [dict(k) for k in case.expected if k not in seen]
    if missing or case.scalar is not None:
        return f"expected metrics {missing or case.scalar} not found in {got.samples}"
    return None


async def run_case(case: Case, instant: Instant, range_query: Range) -> list[str]:
    """Problems found running ``case`` (empty: it passes)."""
    problems: list[str] = []
    try:
        variants = [(case.query, case.time_ms), *at_variants(case.query, case.time_ms)]
    except Exception as e:  # the query itself does not parse
        return [f"{case.query}: {type(e).__name__}: {e}"]
    for query, t in variants:
        where = f"{query} @ {t}ms"
        try:
            got = await instant(query, t)
        except QueryRefusedError as e:
            if not case.fail:
                problems.append(f"{where}: refused: {e}")
            continue
        if case.fail:
            problems.append(f"{where}: expected an error, got {got}")
            continue
        problem = compare(case, got, ordered=case.ordered)
        if problem:
            problems.append(f"{where}: {problem}")
        try:
            matrix = await range_query(query, t - 60_000, t + 60_000, 60_000)
        except QueryRefusedError as e:
            problems.append(f"{where}: range mode refused: {e}")
            continue
        if case.ordered:
            continue
        at_t = [(labels, v) for labels, points in matrix for ts, v in points if ts == t]
        if got.scalar is not None:
            as_answer = Answer(scalar=at_t[0][1] if at_t else math.nan)
        else:
            as_answer = Answer(samples=at_t)
        problem = compare(case, as_answer, ordered=False)
        if problem:
            problems.append(f"{where} (range mode): {problem}")
    return problems

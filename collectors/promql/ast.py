"""The engine's own PromQL syntax tree, converted from promql-parser's.

promql-parser does the parsing (we write no parser); this module turns its objects into
small frozen dataclasses with times in integer milliseconds, numbers every selector so
the planner can fetch each one once, and rejects what the engine does not evaluate with
a ``bad_data`` error that names it, before any I/O happens. The text goes through
``rewrite`` first (``@`` times and ``holt_winters``, which the binding cannot take), and
function arguments are type-checked again (the parser lets ``log2(-Inf)`` through).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import promql_parser as pp

from collectors._core.errors import BadQueryError
from collectors.promql.rewrite import Rewritten, rewrite
from collectors.promql.source import LabelMatcher, MatchType

SUPPORTED_FUNCTIONS = frozenset(
    {
        "rate", "irate", "increase", "delta", "idelta", "changes", "resets",
        "avg_over_time", "sum_over_time", "min_over_time", "max_over_time",
        "count_over_time", "last_over_time", "present_over_time", "stddev_over_time",
        "stdvar_over_time", "quantile_over_time", "absent_over_time",
        "histogram_quantile", "label_replace", "label_join",
        "abs", "ceil", "floor", "round", "clamp", "clamp_min", "clamp_max", "sqrt", "ln",
        "log2", "log10", "exp", "sgn",
        "absent", "vector", "scalar", "time", "timestamp", "sort", "sort_desc",
        "deriv", "predict_linear", "holt_winters", "double_exponential_smoothing",
        "year", "month", "day_of_month", "day_of_week", "day_of_year", "days_in_month",
        "hour", "minute",
        "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh",
        "atanh", "deg", "rad", "pi", "histogram_count", "histogram_sum", "histogram_fraction",
    }
)  # fmt: skip
SUPPORTED_AGGREGATIONS = frozenset(
    {"sum", "avg", "min", "max", "count", "stddev", "stdvar", "topk", "bottomk", "quantile",
     "group", "count_values"}
)  # fmt: skip

_MATCH_TYPES = {
    "MatchOp.Equal": MatchType.EQUAL,
    "MatchOp.NotEqual": MatchType.NOT_EQUAL,
    "MatchOp.Re": MatchType.REGEX,
    "MatchOp.NotRe": MatchType.NOT_REGEX,
}
_TYPE_NAMES = {
    "vector": "instant vector",
    "matrix": "range vector",
    "scalar": "scalar",
    "string": "string",
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_SECOND = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class At:
    """An ``@`` modifier: a fixed time, or the query's ``start()`` / ``end()``."""

    kind: str  # "at" | "start" | "end"
    ms: int = 0


@dataclass(frozen=True, slots=True)
class NumberLit:
    value: float


@dataclass(frozen=True, slots=True)
class StringLit:
    value: str


@dataclass(frozen=True, slots=True)
class VectorSel:
    id: int
    matchers: tuple[LabelMatcher, ...]
    offset_ms: int
    at: At | None


@dataclass(frozen=True, slots=True)
class MatrixSel:
    selector: VectorSel
    range_ms: int


@dataclass(frozen=True, slots=True)
class Subquery:
    expr: Node
    range_ms: int
    step_ms: int  # 0: the default evaluation interval
    offset_ms: int
    at: At | None


@dataclass(frozen=True, slots=True)
class Call:
    name: str
    args: tuple[Node, ...]
    return_type: str


@dataclass(frozen=True, slots=True)
class Aggregate:
    op: str
    expr: Node
    param: Node | None
    without: bool
    grouping: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Binary:
    op: str
    lhs: Node
    rhs: Node
    card: str  # "one-to-one" | "many-to-one" | "one-to-many" | "many-to-many"
    on: bool
    matching: tuple[str, ...]
    include: tuple[str, ...]
    return_bool: bool


@dataclass(frozen=True, slots=True)
class Negate:
    expr: Node


Node = NumberLit | StringLit | VectorSel | MatrixSel | Subquery | Call | Aggregate | Binary | Negate

_CARDS = {
    "OneToOne": "one-to-one",
    "ManyToOne": "many-to-one",
    "OneToMany": "one-to-many",
    "ManyToMany": "many-to-many",
}


def parse(query: str, *, dotall: bool = False) -> Node:
    """Parse ``query`` into the engine's tree; ``BadQueryError`` for anything unusable.

    ``dotall``: regex matchers where ``.`` matches a newline (Prometheus 3)."""
    text = rewrite(query)
    try:
        tree = pp.parse(text.text)
    except ValueError as e:
        raise BadQueryError(f"parse error: {e}") from e
    except BaseException as e:
        # a panic inside the Rust binding: pyo3's PanicException, a BaseException that its
        # module (created at run time) does not let us import by name
        if type(e).__module__ != "pyo3_runtime":
            raise
        raise BadQueryError(f"parse error: {e}") from e
    return _Converter(text, dotall=dotall).convert(tree)


def value_type(node: Node) -> str:
    """``vector``, ``matrix``, ``scalar`` or ``string``, as Prometheus types expressions."""
    if isinstance(node, NumberLit):
        return "scalar"
    if isinstance(node, StringLit):
        return "string"
    if isinstance(node, VectorSel | Aggregate):
        return "vector"
    if isinstance(node, MatrixSel | Subquery):
        return "matrix"
    if isinstance(node, Call):
        return node.return_type
    if isinstance(node, Negate):
        return value_type(node.expr)
    both_scalar = value_type(node.lhs) == "scalar" and value_type(node.rhs) == "scalar"
    return "scalar" if both_scalar else "vector"


def _ms(delta: timedelta | None) -> int:
    return 0 if delta is None else delta // _MS


class _Converter:
    def __init__(self, text: Rewritten, *, dotall: bool) -> None:
        self._ids = itertools.count()
        self._text = text
        self._dotall = dotall

    def _at(self, modifier: Any) -> At | None:
        if modifier is None:
            return None
        if modifier.type == pp.AtModifierType.Start:
            return At("start")
        if modifier.type == pp.AtModifierType.End:
            return At("end")
        return At("at", self._text.resolve((modifier.at - _EPOCH) / _SECOND))

    def convert(self, e: Any) -> Node:
        if isinstance(e, pp.ParenExpr):
            return self.convert(e.expr)
        if isinstance(e, pp.NumberLiteral):
            return NumberLit(float(e.val))
        if isinstance(e, pp.StringLiteral):
            return StringLit(str(e.val))
        if isinstance(e, pp.VectorSelector):
            return self._selector(e)
        if isinstance(e, pp.MatrixSelector):
            return MatrixSel(self._selector(e.vector_selector), _ms(e.range))
        if isinstance(e, pp.SubqueryExpr):
            return Subquery(
                self.convert(e.expr), _ms(e.range), _ms(e.step), _ms(e.offset), self._at(e.at)
            )
        if isinstance(e, pp.UnaryExpr):
            return Negate(self.convert(e.expr))
        if isinstance(e, pp.Call):
            return self._call(e)
        if isinstance(e, pp.AggregateExpr):
            return self._aggregate(e)
        if isinstance(e, pp.BinaryExpr):
            return self._binary(e)
        raise BadQueryError(f"unsupported expression {type(e).__name__}")

    def _selector(self, e: Any) -> VectorSel:
        if e.matchers.or_matchers:
            raise BadQueryError("unsupported: 'or' inside a label matcher list")
        matchers = [
            LabelMatcher(m.name, _MATCH_TYPES[str(m.op)], m.value, dotall=self._dotall)
            for m in e.matchers.matchers
        ]
        if e.name:
            matchers.insert(0, LabelMatcher("__name__", MatchType.EQUAL, e.name))
        return VectorSel(next(self._ids), tuple(matchers), _ms(e.offset), self._at(e.at))

    def _call(self, e: Any) -> Call:
        name = str(e.func.name)
        if name not in SUPPORTED_FUNCTIONS:
            raise BadQueryError(f'unsupported function "{name}": meshfed does not evaluate it')
        ret = str(e.func.return_type).rsplit(".", 1)[-1].lower()
        args = tuple(self.convert(a) for a in e.args)
        wanted = [str(t).rsplit(".", 1)[-1].lower() for t in e.func.arg_types]
        for i, arg in enumerate(args):
            # promql-parser lets some literals through (``log2(-Inf)``): check again
            want, got = wanted[min(i, len(wanted) - 1)], value_type(arg)
            if wanted and got != want:
                raise BadQueryError(
                    f'expected type {_TYPE_NAMES[want]} in call to function "{name}", '
                    f"got {_TYPE_NAMES[got]}"
                )
        return Call(name, args, ret)

    def _aggregate(self, e: Any) -> Aggregate:
        op = str(e.op)
        if op not in SUPPORTED_AGGREGATIONS:
            raise BadQueryError(f'unsupported aggregation "{op}": meshfed does not evaluate it')
        param = None if e.param is None else self.convert(e.param)
        modifier = e.modifier
        without = modifier is not None and modifier.type == pp.AggModifierType.Without
        grouping = () if modifier is None else tuple(str(n) for n in modifier.labels)
        return Aggregate(op, self.convert(e.expr), param, without, grouping)

    def _binary(self, e: Any) -> Binary:
        m = e.modifier
        card, on, return_bool = "one-to-one", False, False
        matching: tuple[str, ...] = ()
        include: tuple[str, ...] = ()
        if m is not None:
            card = _CARDS[str(m.card).rsplit(".", 1)[-1]]
            if m.matching is not None:
                on = m.matching.type == pp.LabelModifierType.Include
                matching = tuple(str(n) for n in m.matching.labels)
            include = tuple(str(n) for n in (m.group_labels or ()))
            return_bool = bool(m.return_bool)
            fill = m.fill_values
            if fill is not None and (fill.lhs is not None or fill.rhs is not None):
                raise BadQueryError("unsupported: fill modifiers in vector matching")
        op = str(e.op)
        if op in ("and", "or", "unless"):
            card = "many-to-many"
        return Binary(
            op, self.convert(e.lhs), self.convert(e.rhs), card, on, matching, include, return_bool
        )

"""The engine's PromQL tree printed back as query text (for the testdata interpreter).

Prometheus's test runner re-evaluates every case with ``@ <eval time>`` set on each
selector (``atModifierTestCases``), by editing its tree and printing it. We do the same:
parse with ``collectors.promql.ast``, edit the frozen dataclasses, print them here, and send
the text through the public API, so the variants go through the parser like any query.
Every operand is parenthesised; durations are printed in milliseconds.
"""

from __future__ import annotations

import dataclasses
import json
import math

from collectors.promql import ast

AT_MODIFIER_UNSAFE = frozenset(
    {"days_in_month", "day_of_month", "day_of_week", "day_of_year", "hour", "minute", "month",
     "year", "predict_linear", "time", "timestamp"}
)  # fmt: skip
"""Prometheus 2.42's ``AtModifierUnsafeFunctions``: no ``@`` variants for these."""


def at_variants(query: str, time_ms: int) -> list[tuple[str, int]]:
    """``atModifierTestCases``: the query with ``@`` pinned to ``time_ms``, at other times."""
    node = ast.parse(query)
    if _uses(node, AT_MODIFIER_UNSAFE):
        return []
    text = to_text(_pin(node, ast.At("at", time_ms)))
    if time_ms == 0:
        times = [-1000, 0, 1000]
    else:
        times = [-10 * time_ms, 0, int(time_ms / 5), time_ms, 10 * time_ms]
    return [(text, t) for t in times]


def _uses(node: ast.Node, names: frozenset[str]) -> bool:
    if isinstance(node, ast.Call) and node.name in names:
        return True
    return any(_uses(child, names) for child in _children(node))


def _children(node: ast.Node) -> list[ast.Node]:
    if isinstance(node, ast.Call):
        return list(node.args)
    if isinstance(node, ast.Aggregate):
        return [node.expr] if node.param is None else [node.param, node.expr]
    if isinstance(node, ast.Binary):
        return [node.lhs, node.rhs]
    if isinstance(node, ast.Negate | ast.Subquery):
        return [node.expr]
    if isinstance(node, ast.MatrixSel):
        return [node.selector]
    return []


def _pin(node: ast.Node, at: ast.At) -> ast.Node:
    """Set ``@`` on every selector and subquery that has none (or start()/end()), but not
    inside a subquery (its ``@`` already fixes the times inside)."""
    if isinstance(node, ast.VectorSel):
        return node if node.at is not None and node.at.kind == "at" else _with_at(node, at)
    if isinstance(node, ast.MatrixSel):
        selector = _pin(node.selector, at)
        assert isinstance(selector, ast.VectorSel)
        return dataclasses.replace(node, selector=selector)
    if isinstance(node, ast.Subquery):
        return node if node.at is not None and node.at.kind == "at" else _with_at(node, at)
    if isinstance(node, ast.Call):
        return dataclasses.replace(node, args=tuple(_pin(a, at) for a in node.args))
    if isinstance(node, ast.Aggregate):
        param = None if node.param is None else _pin(node.param, at)
        return dataclasses.replace(node, expr=_pin(node.expr, at), param=param)
    if isinstance(node, ast.Binary):
        return dataclasses.replace(node, lhs=_pin(node.lhs, at), rhs=_pin(node.rhs, at))
    if isinstance(node, ast.Negate):
        return dataclasses.replace(node, expr=_pin(node.expr, at))
    return node


def _with_at(node: ast.VectorSel | ast.Subquery, at: ast.At) -> ast.Node:
    return dataclasses.replace(node, at=at)


def to_text(node: ast.Node) -> str:
    """PromQL text that parses back to ``node``."""
    if isinstance(node, ast.NumberLit):
        return _number(node.value)
    if isinstance(node, ast.StringLit):
        return _string(node.value)
    if isinstance(node, ast.VectorSel):
        return _selector(node, "")
    if isinstance(node, ast.MatrixSel):
        return _selector(node.selector, f"[{node.range_ms}ms]")
    if isinstance(node, ast.Subquery):
        step = f"{node.step_ms}ms" if node.step_ms else ""
        return f"({to_text(node.expr)})[{node.range_ms}ms:{step}]" + _mods(node.offset_ms, node.at)
    if isinstance(node, ast.Negate):
        return f"-({to_text(node.expr)})"
    if isinstance(node, ast.Call):
        return f"{node.name}({', '.join(to_text(a) for a in node.args)})"
    if isinstance(node, ast.Aggregate):
        grouping = ""
        if node.without or node.grouping:
            grouping = f" {'without' if node.without else 'by'} ({', '.join(node.grouping)}) "
        args = [to_text(node.expr)] if node.param is None else [
            to_text(node.param), to_text(node.expr)
        ]  # fmt: skip
        return f"{node.op}{grouping}({', '.join(args)})"
    return _binary(node)


def _binary(node: ast.Binary) -> str:
    mods = " bool" if node.return_bool else ""
    if node.on or node.matching:
        mods += f" {'on' if node.on else 'ignoring'}({', '.join(node.matching)})"
    if node.card in ("many-to-one", "one-to-many") and node.op not in ("and", "or", "unless"):
        side = "group_left" if node.card == "many-to-one" else "group_right"
        mods += f" {side}({', '.join(node.include)})"
    return f"({to_text(node.lhs)}) {node.op}{mods} ({to_text(node.rhs)})"


def _selector(sel: ast.VectorSel, range_text: str) -> str:
    matchers = ", ".join(f"{m.name}{m.type.value}{_string(m.value)}" for m in sel.matchers)
    return "{" + matchers + "}" + range_text + _mods(sel.offset_ms, sel.at)


def _mods(offset_ms: int, at: ast.At | None) -> str:
    text = f" offset {offset_ms}ms" if offset_ms > 0 else ""
    if offset_ms < 0:
        text = f" offset -{-offset_ms}ms"
    if at is not None:
        text += f" @ {at.kind}()" if at.kind != "at" else f" @ {at.ms / 1000:.3f}"
    return text


def _number(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Inf" if v > 0 else "(-Inf)"
    return f"({v!r})" if v < 0 or (v == 0 and math.copysign(1, v) < 0) else repr(v)


def _string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)

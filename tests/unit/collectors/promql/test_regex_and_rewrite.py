"""RE2 regexes read as Go reads them, and the query-text rewrites before promql-parser.

Expected matches are RE2's (Go ``regexp`` with ``^(?:re)$``, as Prometheus 2.42 compiles
matchers); refusals are what Python's ``re`` cannot express the same way.
"""

from __future__ import annotations

import pytest

from collectors._core.errors import BadQueryError
from collectors.promql import ast
from collectors.promql.regex import compile_anchored
from collectors.promql.rewrite import rewrite


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        pytest.param(".*((?i)DUC).*", "PRODUCTION", True, id="flag-mid-pattern"),
        pytest.param(".*((?i)DUC).*", "produc", True, id="flag-mid-pattern-lower"),
        pytest.param("a(?i)b|c", "C", True, id="flag-carries-to-later-alternatives"),
        pytest.param("a(?i)b|c", "Ab", False, id="flag-not-before-itself"),
        pytest.param("(?i:a)b", "AB", False, id="scoped-flag-ends"),
        pytest.param("(?i)abc", "ABC", True, id="flag-at-start"),
        pytest.param("a", "a\n", False, id="dollar-is-end-of-text"),
        pytest.param("a$", "a", True, id="explicit-dollar"),
        pytest.param("a.b", "a\nb", False, id="dot-not-newline"),
        pytest.param("(?s)a.b", "a\nb", True, id="dot-newline-with-s"),
        pytest.param("(?m)a$", "a", True, id="multiline-dollar"),
        pytest.param(r"\d+", "١٢", False, id="digits-are-ascii"),
        pytest.param(r"\w+", "é", False, id="word-is-ascii"),
        pytest.param("[[:alpha:]]+", "abC", True, id="posix-class"),
        pytest.param(r"\x{e9}", "é", True, id="hex-escape-braces"),
        pytest.param("(?<n>a)b", "ab", True, id="named-group"),
        pytest.param("(?U)a+", "aaa", True, id="ungreedy-still-matches"),
        pytest.param("", "", True, id="empty"),
    ],
)
def test_matches_like_re2(pattern: str, value: str, matches: bool) -> None:
    assert (compile_anchored(pattern).match(value) is not None) is matches


@pytest.mark.parametrize(
    ("pattern", "groups"),
    [
        pytest.param("(?U)(a+)(a*)", ("a", "aa"), id="ungreedy-lazy"),
        pytest.param("(?U)(a+?)(a*)", ("aaa", ""), id="ungreedy-question-greedy"),
        pytest.param("(a+?)(a*)", ("a", "aa"), id="lazy"),
    ],
)
def test_ungreedy_groups(pattern: str, groups: tuple[str, ...]) -> None:
    m = compile_anchored(pattern).match("aaa")
    assert m is not None and m.groups() == groups


@pytest.mark.parametrize(
    "pattern",
    [
        pytest.param(r"\pL", id="unicode-class"),
        pytest.param("[[a]]", id="nested-class"),
        pytest.param("[a&&b]", id="class-set-operation"),
        pytest.param("a**", id="nested-repetition"),
        pytest.param("a)", id="unbalanced-close"),
        pytest.param("(a", id="unbalanced-open"),
        pytest.param("(?=a)", id="lookahead"),
    ],
)
def test_refused(pattern: str) -> None:
    with pytest.raises(BadQueryError):
        compile_anchored(pattern)


@pytest.mark.parametrize(
    ("query", "at_ms"),
    [
        pytest.param("x @ -100", -100_000, id="before-1970"),
        pytest.param("x @ 1.5", 1500, id="fraction"),
        pytest.param("x @ 9e15", 9 * 10**18, id="after-year-9999"),
        pytest.param("x @ 0x10", 16_000, id="hex"),
        pytest.param("x @-0.0005", -1, id="rounded-half-away-from-zero"),
    ],
)
def test_at_any_time(query: str, at_ms: int) -> None:
    node = ast.parse(query)
    assert isinstance(node, ast.VectorSel) and node.at == ast.At("at", at_ms)


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("x @ Inf", id="infinite"),
        pytest.param("x @ NaN", id="nan"),
        pytest.param("x @ 1e19", id="beyond-int64"),
    ],
)
def test_at_out_of_bounds(query: str) -> None:
    with pytest.raises(BadQueryError, match="timestamp out of bounds"):
        ast.parse(query)


@pytest.mark.parametrize(
    ("query", "text"),
    [
        pytest.param("holt_winters(x[5m], 1, 2)", "double_exponential_smoothing(x[5m], 1, 2)",
                     id="renamed"),
        pytest.param('x{a="holt_winters(@ 5"}', 'x{a="holt_winters(@ 5"}', id="strings-untouched"),
        pytest.param("holt_winters{a='b'}", "holt_winters{a='b'}", id="metric-name-untouched"),
        pytest.param("x # @ 5\n", "x # @ 5\n", id="comment-untouched"),
    ],
)  # fmt: skip
def test_rewrite(query: str, text: str) -> None:
    assert rewrite(query).text == text

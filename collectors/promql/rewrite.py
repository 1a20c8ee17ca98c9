"""Query-text rewrites applied before promql-parser, for what it cannot take as 2.42 does.

promql-parser implements the Prometheus 3 grammar through a Rust binding, which differs
from 2.42 in two places a user can reach:

- ``@ <number>`` is handed to Python as a ``datetime``: a time before 1970 panics inside
  the binding (a ``BaseException`` no handler expects) and one after year 9999 is refused.
  Prometheus accepts any time that fits an int64 of milliseconds. So every ``@`` number is
  read here with Go's rules, replaced by a small placeholder (``@ 1``, ``@ 2``...) and
  handed back by its placeholder after parsing;
- ``holt_winters`` (2.42) was renamed ``double_exponential_smoothing`` in Prometheus 3,
  and the parser knows only the new name: a call of the old one is renamed.

The scanner skips strings and comments, so label values and regexes are never touched.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from collectors._core.errors import BadQueryError

_NUMBER = re.compile(
    r"[+-]?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[iI][nN][fF]|[nN][aA][nN])"
    r"(?![a-zA-Z0-9_:.])"
)
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_RENAMED = {"holt_winters": "double_exponential_smoothing"}
_INT64_MAX = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Rewritten:
    """The text promql-parser gets, and the real ``@`` times by placeholder (1, 2, ...)."""

    text: str
    at_ms: tuple[int, ...]

    def resolve(self, placeholder_s: float) -> int:
        """The real time in ms of the ``@`` that promql-parser read as ``placeholder_s``."""
        return self.at_ms[round(placeholder_s) - 1]


def rewrite(query: str) -> Rewritten:
    """``query`` with ``@`` numbers as placeholders and old function names renamed."""
    out: list[str] = []
    times: list[int] = []
    i, n = 0, len(query)
    while i < n:
        c = query[i]
        if c in "\"'`":
            end = _string_end(query, i)
            out.append(query[i:end])
            i = end
        elif c == "#":
            end = query.find("\n", i)
            end = n if end < 0 else end
            out.append(query[i:end])
            i = end
        elif c == "@":
            j = i + 1
            while j < n and query[j] in " \t\r\n":
                j += 1
            m = _NUMBER.match(query, j)
            if m is None:
                out.append(c)
                i += 1
                continue
            times.append(_at_ms(m.group()))
            out.append(f"@ {len(times)}")
            i = m.end()
        elif c.isascii() and (c.isalpha() or c in "_:"):
            m = _IDENT.match(query, i)
            assert m is not None
            word = m.group()
            rest = query[m.end() :].lstrip()
            out.append(_RENAMED.get(word, word) if rest.startswith("(") else word)
            i = m.end()
        else:
            out.append(c)
            i += 1
    return Rewritten("".join(out), tuple(times))


def _string_end(query: str, i: int) -> int:
    """Index after the string literal opening at ``i`` (the end of text if unterminated)."""
    quote, j, n = query[i], i + 1, len(query)
    while j < n:
        if query[j] == "\\" and quote != "`":
            j += 2
            continue
        if query[j] == quote:
            return j + 1
        j += 1
    return n


def _at_ms(text: str) -> int:
    """Go's ``@`` rule: a finite float of seconds within int64, rounded to the millisecond."""
    body = text.lstrip("+-")
    sign = -1.0 if text.startswith("-") else 1.0
    value = sign * (float(int(body, 16)) if body[:2] in ("0x", "0X") else float(body))
    if math.isnan(value) or math.isinf(value) or not -_INT64_MAX <= value < _INT64_MAX:
        raise BadQueryError(f"timestamp out of bounds for @ modifier: {_go_f(value)}")
    ms = value * 1000
    rounded = math.floor(abs(ms) + 0.5) * (1 if ms >= 0 else -1)  # Go's math.Round
    if not -(2**63) <= rounded <= _INT64_MAX:
        raise BadQueryError(f"timestamp out of bounds for @ modifier: {_go_f(value)}")
    return int(rounded)


def _go_f(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:f}"

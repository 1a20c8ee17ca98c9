"""Go RE2 regexes (as Prometheus 2.42 compiles them) translated to Python's ``re``.

Prometheus anchors every matcher and ``label_replace`` regex as ``^(?:re)$`` and compiles it
with Go's ``regexp`` (RE2 syntax; promql-parser has already refused what that syntax does not
allow). Python's ``re`` reads most of it the same way; the differences that change a match:

- inline flags: RE2 takes ``(?i)`` anywhere and applies it to the rest of the enclosing
  group, Python only at the very start. ``a(?i)b|c`` becomes ``a(?i:b)|(?i:c)``;
- ``$`` is the end of the text in RE2 (without ``m``) but also "before a final newline" in
  Python, so it becomes ``\\Z``; RE2's ``\\z`` is Python's ``\\Z``;
- ``\\d \\w \\s \\b`` are ASCII in RE2 and Unicode in Python, so they become ASCII classes;
- POSIX classes ``[[:alpha:]]``, ``\\x{10FFFF}`` and ``(?<name>...)`` are spelled Python's way.

- the ungreedy flag ``U`` (unknown to Python) swaps lazy and greedy repetitions;
- ``a**`` and ``a*+`` are errors in RE2 (Python 3.11 reads a possessive ``*+``).

What Python cannot express the same way (Unicode classes
``\\pL``, nested classes and class set operations) is refused with ``BadQueryError``, which
the API answers 400 ``bad_data``. ``dotall=True`` gives Prometheus 3's matchers, where ``.``
also matches a newline.
"""

from __future__ import annotations

import functools
import re

from collectors._core.errors import BadQueryError

_ASCII = {"d": "0-9", "w": "0-9A-Za-z_", "s": "\\t\\n\\f\\r "}
_POSIX = {
    "alnum": "0-9A-Za-z", "alpha": "A-Za-z", "ascii": "\\x00-\\x7f", "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f", "digit": "0-9", "graph": "!-~", "lower": "a-z",
    "print": " -~", "punct": "!-/:-@\\[-`{-~", "space": "\\t\\n\\v\\f\\r ", "upper": "A-Z",
    "word": "0-9A-Za-z_", "xdigit": "0-9A-Fa-f",
}  # fmt: skip
_FLAGS = re.compile(r"\(\?([imsU]*)(?:-([imsU]*))?([:)])")
_REPEAT = re.compile(r"[*+?]|\{\d+(?:,\d*)?\}")
_NAMED = re.compile(r"\(\?P?<([A-Za-z_][A-Za-z0-9_]*)>")


@functools.lru_cache(maxsize=1024)
def compile_anchored(pattern: str, *, dotall: bool = False) -> re.Pattern[str]:
    """``^(?:pattern)$`` with RE2's meaning, as a Python pattern; ``BadQueryError`` if it
    cannot be expressed (or is not a valid regex)."""
    translator = _Translator(pattern)
    translated = translator.group_body(mode=frozenset())
    if translator.i < len(pattern):
        raise BadQueryError(f"error parsing regexp: unexpected ): `{pattern}`")
    try:
        return re.compile(f"(?:{translated})\\Z", re.DOTALL if dotall else 0)
    except (re.error, OverflowError, RecursionError) as e:
        raise BadQueryError(f"error parsing regexp: {e}: `{pattern}`") from e


class _Translator:
    def __init__(self, pattern: str) -> None:
        self.p = pattern
        self.i = 0

    def _refuse(self, what: str) -> BadQueryError:
        return BadQueryError(f"unsupported in a regular expression: {what}: `{self.p}`")

    def group_body(self, *, mode: frozenset[str]) -> str:
        """Alternatives up to the closing ``)`` of the current group (not consumed)."""
        alternatives: list[str] = []
        current: list[str] = []
        pending: list[str] = []  # scoped groups opened by bare flags, closed at "|" or ")"
        scoped_flags = ""  # flags that carry over to the next alternatives of this group
        while self.i < len(self.p) and self.p[self.i] != ")":
            c = self.p[self.i]
            if c == "|":
                self.i += 1
                current.extend(")" for _ in pending)
                alternatives.append("".join(current))
                current, pending = [], []
                if scoped_flags:
                    current.append(f"(?{scoped_flags}:")
                    pending.append(scoped_flags)
                continue
            m = _FLAGS.match(self.p, self.i)
            if m is not None:
                on, off, end = m.group(1), m.group(2) or "", m.group(3)
                self.i = m.end()
                inner_mode = (mode | (set(on) & {"m", "U"})) - set(off)
                on, off = on.replace("U", ""), off.replace("U", "")  # U: see _quantifier
                spec = on + (f"-{off}" if off else "")
                if end == ")":  # a bare flag group: the rest of this group
                    if spec and spec != "-":
                        current.append(f"(?{spec}:")
                        pending.append(spec)
                        scoped_flags = _merge(scoped_flags, spec)
                    mode = inner_mode
                    continue
                body = self.group_body(mode=inner_mode)
                self._close()
                current.append(f"(?{spec}:{body})" if spec and spec != "-" else f"(?:{body})")
                continue
            current.append(self._atom(mode=mode))
        current.extend(")" for _ in pending)
        alternatives.append("".join(current))
        return "|".join(alternatives)

    def _close(self) -> None:
        if self.i >= len(self.p):
            raise BadQueryError(f"error parsing regexp: missing closing ): `{self.p}`")
        self.i += 1

    def _atom(self, *, mode: frozenset[str]) -> str:
        p, c = self.p, self.p[self.i]
        if c == "(":
            named = _NAMED.match(p, self.i)
            if named is not None:
                self.i = named.end()
                body = self.group_body(mode=mode)
                self._close()
                return f"(?P<{named.group(1)}>{body})"
            if p.startswith("(?", self.i):
                raise self._refuse(f"the group {p[self.i : self.i + 4]!r}")
            self.i += 1
            body = self.group_body(mode=mode)
            self._close()
            return f"({body})"
        if c == "[":
            return self._class()
        if c == "\\":
            return self._escape(in_class=False)
        if c == "$":
            self.i += 1
            return "(?m:$)" if "m" in mode else "\\Z"
        repeat = _REPEAT.match(p, self.i)
        if repeat is not None:
            return self._quantifier(repeat.group(), ungreedy="U" in mode)
        self.i += 1
        return c

    def _quantifier(self, text: str, *, ungreedy: bool) -> str:
        """A repetition operator; under RE2's ``U`` flag ``*`` is lazy and ``*?`` greedy."""
        self.i += len(text)
        lazy = self.i < len(self.p) and self.p[self.i] == "?"
        if lazy:
            self.i += 1
        if self.i < len(self.p) and self.p[self.i] in "*+":
            raise BadQueryError(
                f"error parsing regexp: invalid nested repetition operator: `{self.p}`"
            )
        return text + ("?" if lazy != ungreedy else "")

    def _escape(self, *, in_class: bool) -> str:
        p = self.p
        if self.i + 1 >= len(p):
            raise BadQueryError(f"error parsing regexp: trailing backslash: `{p}`")
        c = p[self.i + 1]
        self.i += 2
        if c in "dws":
            return _ASCII[c] if in_class else f"[{_ASCII[c]}]"
        if c in "DWS":
            if in_class:
                raise self._refuse(f"\\{c} inside a character class")
            return f"[^{_ASCII[c.lower()]}]"
        if c in "bB" and not in_class:
            return f"(?a:\\{c})"
        if c == "z":
            return "\\Z"
        if c in "pPQEC":
            raise self._refuse(f"\\{c}")
        if c == "x" and self.i < len(p) and p[self.i] == "{":
            end = p.find("}", self.i)
            digits = p[self.i + 1 : end] if end > 0 else ""
            if not digits or any(d not in "0123456789abcdefABCDEF" for d in digits):
                raise BadQueryError(f"error parsing regexp: invalid escape sequence: `{p}`")
            self.i = end + 1
            code = int(digits, 16)
            if code > 0x10FFFF:
                raise BadQueryError(f"error parsing regexp: invalid escape sequence: `{p}`")
            return f"\\U{code:08x}"
        if c.isdigit() and c != "0":
            raise self._refuse("backreferences")
        return "\\" + c

    def _class(self) -> str:
        p = self.p
        out = ["["]
        self.i += 1
        if self.i < len(p) and p[self.i] == "^":
            out.append("^")
            self.i += 1
        first = True
        while self.i < len(p):
            c = p[self.i]
            if c == "]" and not first:
                self.i += 1
                out.append("]")
                return "".join(out)
            first = False
            if c == "[" and p.startswith("[:", self.i):
                end = p.find(":]", self.i + 2)
                name = p[self.i + 2 : end] if end > 0 else ""
                if name not in _POSIX:
                    raise self._refuse(f"the class {p[self.i :]!r}")
                out.append(_POSIX[name])
                self.i = end + 2
            elif c == "[":
                raise self._refuse("nested character classes")
            elif c == "\\":
                out.append(self._escape(in_class=True))
            elif p.startswith(("&&", "--", "~~"), self.i):
                raise self._refuse("character class set operations")
            else:
                out.append(c)
                self.i += 1
        raise BadQueryError(f"error parsing regexp: missing closing ]: `{p}`")


def _merge(flags: str, spec: str) -> str:
    """The flags in force after ``(?spec)`` when ``flags`` already were (for Python spec)."""
    on = set(flags.split("-", maxsplit=1)[0]) if flags else set()
    off = set(flags.split("-")[1]) if "-" in flags else set()
    new_on, _, new_off = spec.partition("-")
    on = (on | set(new_on)) - set(new_off)
    off = (off | set(new_off)) - set(new_on)
    text = "".join(sorted(on))
    return text + ("-" + "".join(sorted(off)) if off else "")

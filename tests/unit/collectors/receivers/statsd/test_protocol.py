"""StatsD/DogStatsD line parsing: the reference daemon's validation rules, DogStatsD extensions,
and a hypothesis fuzz (S7): random bytes only ever become counted bad lines."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.receivers.statsd.protocol.events import DogEvent, ServiceCheck
from collectors.receivers.statsd.protocol.lines import (
    BadValue,
    MetricKind,
    MetricValue,
    js_number,
    parse_line,
    sanitize_key,
    split_lines,
)

C, G, T, S = MetricKind.COUNTER, MetricKind.GAUGE, MetricKind.TIMER, MetricKind.SET


def summary(line: str) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    for item in parse_line(line):
        if isinstance(item, MetricValue):
            value = item.member if item.kind is S else item.value
            out.append((item.kind, item.name, value, item.delta))
        else:
            out.append(("bad",))
    return out


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param("hits:1|c", [(C, "hits", 1.0, False)], id="counter"),
        pytest.param("hits:1|c|@0.5", [(C, "hits", 2.0, False)], id="sampled-counter"),
        pytest.param("hits:1|c|@0.1|ignored", [(C, "hits", 10.0, False)], id="extra-field-ignored"),
        pytest.param("t:12.5|ms", [(T, "t", 12.5, False)], id="timer"),
        pytest.param("t:-1|ms", [("bad",)], id="negative-timer-bad"),
        pytest.param("t:-1|ms\r", [(T, "t", -1.0, False)], id="untrimmed-type-skips-ms-check"),
        pytest.param("g:+5|g", [(G, "g", 5.0, True)], id="gauge-delta"),
        pytest.param("g:-5|g", [(G, "g", -5.0, True)], id="gauge-negative-delta"),
        pytest.param("g: +5|g", [(G, "g", 5.0, False)], id="gauge-space-is-no-delta"),
        pytest.param("u:alice|s", [(S, "u", "alice", False)], id="set"),
        pytest.param("u:|s", [(S, "u", "0", False)], id="empty-set-member-is-0"),
        pytest.param("k:1|c:2|ms", [(C, "k", 1.0, False), (T, "k", 2.0, False)], id="multi"),
        pytest.param("k:1|c:x|c", [(C, "k", 1.0, False), ("bad",)], id="multi-one-bad"),
        pytest.param("h:3|h", [(T, "h", 3.0, False)], id="histogram-as-timer"),
        pytest.param("d:1:2:3|d", [(T, "d", v, False) for v in (1.0, 2.0, 3.0)], id="v11-packing"),
        pytest.param("k:5|weird", [(C, "k", 5.0, False)], id="unknown-type-is-counter"),
        pytest.param("x:0x10|c", [(C, "x", 16.0, False)], id="js-hex"),
        pytest.param("x:1e3|c", [(C, "x", 1000.0, False)], id="exponent"),
        pytest.param("x:inf|c", [("bad",)], id="python-inf-is-not-js"),
        pytest.param("x:1_0|c", [("bad",)], id="python-underscore-is-not-js"),
        pytest.param("nocolon", [("bad",)], id="no-colon"),
        pytest.param("x:1", [("bad",)], id="no-type"),
        pytest.param("x:1|c|0.5", [("bad",)], id="rate-without-at"),
        pytest.param("x:1|c|@-1", [("bad",)], id="negative-rate"),
        pytest.param("x:1|c|@0", [("bad",)], id="zero-rate"),
        pytest.param("x:1|c|", [("bad",)], id="empty-rate"),
        pytest.param("a b/c!:1|c", [(C, "a_b-c", 1.0, False)], id="sanitized-key"),
    ],
)
def test_lines(line: str, expected: list[tuple[object, ...]]) -> None:
    assert summary(line) == expected


@pytest.mark.parametrize(
    ("line", "tags", "container", "timestamp"),
    [
        pytest.param("a:1|c|#env:prod,az", (("az", "true"), ("env", "prod")), "", None, id="tags"),
        pytest.param(
            "a:1|c|#env:prod|c:abc|T1700000000",
            (("env", "prod"),),
            "abc",
            1700000000,
            id="tags-container-timestamp",
        ),
        pytest.param("a:1|c|c:abc", (), "abc", None, id="container-without-tags"),
    ],
)
def test_dogstatsd_fields(
    line: str, tags: tuple[tuple[str, str], ...], container: str, timestamp: int | None
) -> None:
    (item,) = parse_line(line)
    assert isinstance(item, MetricValue)
    assert (item.tags, item.container_id, item.timestamp_s) == (tags, container, timestamp)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param(
            "_e{5,12}:Title|line1\\nline2|t:error|h:web1|#env:prod",
            DogEvent(
                "Title", "line1\nline2", None, "web1", alert_type="error", tags=(("env", "prod"),)
            ),
            id="event",
        ),
        pytest.param(
            "_e{2,3}:é|abc|d:1700000000", DogEvent("é", "abc", 1700000000), id="event-utf8-lengths"
        ),
        pytest.param(
            "_sc|db|1|d:5|h:h1|#a:b|m:slow|ok",
            ServiceCheck("db", 1, 5, "h1", "slow|ok", (("a", "b"),)),
            id="service-check",
        ),
        pytest.param("_e{9,1}:short|x", BadValue, id="event-bad-length"),
        pytest.param("_sc|db|7", BadValue, id="check-bad-status"),
    ],
)
def test_events_and_checks(line: str, expected: object) -> None:
    (item,) = parse_line(line)
    if expected is BadValue:
        assert isinstance(item, BadValue)
    else:
        assert item == expected


@pytest.mark.parametrize(
    ("text", "value"),
    [
        pytest.param("", 0.0, id="empty"),
        pytest.param(" 2 ", 2.0, id="whitespace"),
        pytest.param("Infinity", math.inf, id="infinity"),
        pytest.param("0b101", 5.0, id="binary"),
        pytest.param(".5", 0.5, id="leading-dot"),
        pytest.param("5.", 5.0, id="trailing-dot"),
    ],
)
def test_js_number(text: str, value: float) -> None:
    assert js_number(text) == value


def test_js_number_nan() -> None:
    assert math.isnan(js_number("1e")) and math.isnan(js_number("-0x10"))


def test_sanitize_and_split() -> None:
    assert sanitize_key("a\tb  c/d;e=f.g") == "a_b_c-d;e=f.g"
    assert split_lines(b"a:1|c\n\nb:2|c\n") == ["a:1|c", "b:2|c"]


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_random_bytes_never_raise(data: bytes) -> None:
    for line in split_lines(data):
        for item in parse_line(line):
            assert isinstance(item, MetricValue | BadValue | DogEvent | ServiceCheck)


_ALPHABET = st.sampled_from(list(":|@#,.-+eE0123456789csgmhdT_{}\\x \t"))


@settings(max_examples=400, deadline=None)
@given(st.lists(_ALPHABET, max_size=60).map("".join))
def test_fuzz_statsd_alphabet_never_raises(line: str) -> None:
    for item in parse_line(line or "x"):
        assert isinstance(item, MetricValue | BadValue | DogEvent | ServiceCheck)
        if isinstance(item, MetricValue) and item.kind is T:
            assert not math.isnan(item.value)

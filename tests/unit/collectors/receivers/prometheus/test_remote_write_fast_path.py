"""The remote_write decoder's own reading of the usual layout agrees with protobuf's decoder.

``SeriesDecoder`` reads labels-then-samples series itself and caches label blocks by their
raw bytes; every other layout goes through protobuf. These cases compare both paths with
the reference (the full ``WriteRequest`` message parsed by upb) on the same bytes.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors._core.errors import PermanentError
from collectors.receivers.prometheus.protocol.remote_write import SeriesDecoder, WriteBatch
from collectors.receivers.prometheus.protocol.remote_write_proto import WriteRequest

Flat = list[tuple[str, dict[str, str], int, int]]


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def field(number: int, payload: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def label(name: str, value: str) -> bytes:
    return field(1, field(1, name.encode()) + field(2, value.encode()))


def sample(ts: int, value: float, *, ts_first: bool = False) -> bytes:
    v = b"\x09" + struct.pack("<d", value)
    t = b"\x10" + varint(ts)
    return field(2, t + v if ts_first else v + t)


def request(*series: bytes) -> bytes:
    return b"".join(field(1, s) for s in series)


def bits(v: float) -> int:
    return int(struct.unpack("<Q", struct.pack("<d", v))[0])


def flat(batch: WriteBatch) -> Flat:
    return [(s.name, dict(s.labels), s.timestamp_ms, bits(s.value)) for s in batch.samples]


def reference(data: bytes) -> Flat:
    out: Flat = []
    for ts in WriteRequest.FromString(data).timeseries:
        pairs = {lb.name: lb.value for lb in ts.labels}
        name = pairs.pop("__name__")
        labels = {k: v for k, v in pairs.items() if v}
        out.extend((name, labels, p.timestamp, bits(p.value)) for p in ts.samples)
    return out


def by_series(samples: Flat) -> Flat:
    """The samples as a multiset: the decoder gathers each series' samples together, and
    samples of one series sent under two encodings of its labels (an empty label present
    or not) may come out in another order (the store sorts them by time anyway). Order
    within one series is checked by ``test_sample_order_is_kept``."""
    return sorted(samples, key=lambda s: (s[0], sorted(s[1].items()), s[2], s[3]))


def check(data: bytes) -> None:
    decoder = SeriesDecoder()
    first, second = decoder.parse(data), decoder.parse(data)  # cold, then from the cache
    assert flat(first) == flat(second)
    assert by_series(flat(first)) == by_series(reference(data))


UP = label("__name__", "up") + label("job", "x")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(request(UP + sample(1000, 1.5)), id="usual"),
        pytest.param(request(UP + sample(1000, 1.5) + sample(2000, 2.5)), id="two-samples"),
        pytest.param(request(UP + sample(1000, 0.0)), id="zero-value-omitted"),
        pytest.param(request(UP + sample(0, 3.0)), id="zero-timestamp-omitted"),
        pytest.param(request(UP + field(2, b"")), id="empty-sample"),
        pytest.param(request(UP + sample(-5, 1.0)), id="negative-timestamp"),
        pytest.param(request(UP + sample(7, 1.0, ts_first=True)), id="timestamp-first"),
        pytest.param(request(sample(7, 1.0) + UP), id="labels-after-samples"),
        pytest.param(request(UP + sample(7, 1.0) + field(3, b"\x10\x01")), id="exemplar"),
        pytest.param(request(UP + label("z", "v" * 300) + sample(7, 1.0)), id="long-label"),
        pytest.param(request(UP), id="no-samples"),
        pytest.param(
            request(UP + sample(1, 1.0), UP + sample(2, 2.0), UP + sample(2, 2.0)),
            id="series-repeated",
        ),
        pytest.param(
            request(UP + field(2, b"\x09" + struct.pack("<d", 1.0) + b"\x09" + b"\x00" * 8)),
            id="value-repeated-last-wins",
        ),
    ],
)
def test_layouts_agree_with_protobuf(data: bytes) -> None:
    check(data)


def test_sample_order_is_kept() -> None:
    data = request(
        UP + sample(3, 1.0), label("__name__", "x") + sample(1, 1.0), UP + sample(2, 2.0)
    )
    assert [(s.name, s.timestamp_ms) for s in SeriesDecoder().parse(data).samples] == [
        ("up", 3),
        ("up", 2),
        ("x", 1),
    ]


def test_known_labels_give_the_same_series_object() -> None:
    decoder = SeriesDecoder()
    a = decoder.parse(request(UP + sample(1, 1.0))).batch.series[0]
    b = decoder.parse(request(UP + sample(2, 1.0))).batch.series[0]
    assert a is b


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(request(UP + b"\x12\x05\x09\x00"), id="truncated-sample"),
        pytest.param(request(UP + b"\x12\x02\x10\xff"), id="truncated-varint"),
        pytest.param(request(UP + b"\x12\x0c\x10" + b"\xff" * 11), id="varint-too-long"),
        pytest.param(request(label("job", "x") + label("__name__", "up")), id="unsorted"),
        pytest.param(request(label("__name__", "up") + label("a-b", "x")), id="bad-name"),
        pytest.param(request(field(1, field(1, b"__name__") + field(2, b"\xff"))), id="bad-utf8"),
    ],
)
def test_bad_series_are_refused_cold_and_after_a_cached_request(data: bytes) -> None:
    warm = SeriesDecoder()
    warm.parse(request(UP + sample(1, 1.0)))
    for decoder in (SeriesDecoder(), warm):
        with pytest.raises(PermanentError):
            decoder.parse(data)


def test_non_ascii_labels_round_trip() -> None:
    check(request(label("__name__", "up") + label("a", "ünï ✓") + sample(1, 1.0)))


label_name = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,8}", fullmatch=True)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.dictionaries(label_name.filter(lambda n: n != "__name__"), st.text(), max_size=4),
            st.lists(
                st.tuples(
                    st.integers(-(2**63), 2**63 - 1) | st.sampled_from([0, 1_700_000_000_000]),
                    st.floats() | st.sampled_from([0.0, -0.0]),
                ),
                max_size=3,
            ),
        ),
        max_size=4,
    )
)
def test_random_valid_requests_agree(
    series: list[tuple[dict[str, str], list[tuple[int, float]]]],
) -> None:
    req = WriteRequest()
    for labels, points in series:
        ts = req.timeseries.add()
        for name, value in sorted([("__name__", "m"), *labels.items()]):
            ts.labels.add(name=name, value=value)
        for t, v in points:
            ts.samples.add(timestamp=t, value=v)
    check(req.SerializeToString())

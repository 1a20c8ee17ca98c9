from __future__ import annotations

import contextlib
import math
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors._core.errors import LimitExceededError, PermanentError
from collectors._core.model import MetricType
from collectors.receivers.prometheus.protocol.remote_write import (
    decode,
    parse_write_request,
    snappy_uncompressed_length,
)
from collectors.receivers.prometheus.protocol.remote_write_proto import WriteRequest
from tests.helpers.remote_write import proto_write_request as request
from tests.helpers.remote_write import snappy_compress as snappy

MAX = 1 << 20
STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]


def test_decodes_samples_and_metadata() -> None:
    req = WriteRequest.FromString(
        request([([("__name__", "up"), ("job", "x")], [(1000, 1.0), (2000, STALE_NAN)])])
    )
    req.metadata.add(type=1, metric_family_name="http_requests", help="Total.", unit="")
    batch = decode(snappy(req.SerializeToString()), max_decompressed_bytes=MAX)
    assert [(s.name, dict(s.labels), s.timestamp_ms) for s in batch.samples] == [
        ("up", {"job": "x"}, 1000),
        ("up", {"job": "x"}, 2000),
    ]
    stale = struct.unpack("<Q", struct.pack("<d", batch.samples[1].value))[0]
    assert stale == 0x7FF0000000000002
    assert batch.metadata[0].type is MetricType.COUNTER
    assert batch.metadata[0].help == "Total."


def test_empty_label_value_is_dropped() -> None:
    batch = parse_write_request(request([([("__name__", "up"), ("a", "")], [(1, 1.0)])]))
    assert dict(batch.samples[0].labels) == {}


@pytest.mark.parametrize(
    "labels",
    [
        pytest.param([("job", "x")], id="no-name"),
        pytest.param([("__name__", "")], id="empty-name"),
        pytest.param([("job", "x"), ("__name__", "up")], id="unsorted"),
        pytest.param([("__name__", "up"), ("a", "1"), ("a", "2")], id="duplicate"),
        pytest.param([("", "x"), ("__name__", "up")], id="empty-label-name"),
        pytest.param([("__name__", "up"), ("a-b", "1")], id="invalid-label-name"),
        pytest.param([("__name__", "1up")], id="invalid-metric-name"),
    ],
)
def test_invalid_series_are_permanent_errors(labels: list[tuple[str, str]]) -> None:
    with pytest.raises(PermanentError):
        parse_write_request(request([(labels, [(1, 1.0)])]))


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"\xff\xff\xff\xff\x0f", id="declares-4GiB"),
        pytest.param(b"\x80\x80\x80\x80\x08", id="declares-2GiB"),
        pytest.param(b"\x81\x80\x40" + b"\x00" * 10, id="declares-1MiB-plus"),
    ],
)
def test_snappy_bomb_refused_before_decompressing(body: bytes) -> None:
    with pytest.raises(LimitExceededError):
        decode(body, max_decompressed_bytes=MAX)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\xff\xff\xff\xff\xff\xff", id="varint-too-long"),
        pytest.param(b"\x0a\x00", id="truncated-block"),
        pytest.param(b"\x05" + b"\x00" * 20, id="garbage-block"),
    ],
)
def test_bad_snappy_is_permanent(body: bytes) -> None:
    with pytest.raises(PermanentError):
        decode(body, max_decompressed_bytes=MAX)


def test_uncompressed_length_header() -> None:
    assert snappy_uncompressed_length(snappy(b"x" * 300)) == 300


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_random_bodies_raise_only_permanent_errors(body: bytes) -> None:
    with contextlib.suppress(PermanentError):
        decode(body, max_decompressed_bytes=MAX)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_random_protobuf_raises_only_permanent_errors(data: bytes) -> None:
    try:
        batch = parse_write_request(data)
    except PermanentError:
        return
    for s in batch.samples:
        assert s.name
        assert isinstance(s.value, float)
        assert not math.isinf(float(s.timestamp_ms))


label_name = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,8}", fullmatch=True)


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(label_name.filter(lambda n: n != "__name__"), st.text(min_size=1), max_size=5),
    st.lists(st.tuples(st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False)), max_size=5),
)
def test_valid_requests_round_trip(labels: dict[str, str], points: list[tuple[int, float]]) -> None:
    pairs = sorted([("__name__", "m"), *labels.items()])
    batch = decode(snappy(request([(pairs, points)])), max_decompressed_bytes=MAX)
    assert [(s.timestamp_ms, s.value) for s in batch.samples] == points
    assert all(dict(s.labels) == labels for s in batch.samples)

"""The native remote_write split gives exactly what the pure-Python decoder gives.

Every body is decoded with ``meshfed_native`` and with it switched off, and the batches
(labels, offsets, timestamps, value bits), metadata and errors must be identical. The
native decoder decodes each body twice: first with its blocks new (Python validates them),
then with them cached natively (the series come back made). Bodies are built with the real
protobuf classes.
"""

from __future__ import annotations

import math
import random
import struct

import pytest

from collectors._core.errors import PermanentError
from collectors._core.series_batch import SeriesLabels
from collectors.receivers.prometheus.protocol import remote_write_native
from collectors.receivers.prometheus.protocol.remote_write import SeriesDecoder
from collectors.receivers.prometheus.protocol.remote_write_proto import WriteRequest
from tests.helpers.remote_write import proto_write_request as request
from tests.helpers.remote_write import snappy_compress as snappy

pytestmark = pytest.mark.unit
LIMIT = 1 << 20
STALE = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]


def outcome(body: bytes, *, native: bool, monkeypatch: pytest.MonkeyPatch) -> object:
    monkeypatch.setattr(remote_write_native, "AVAILABLE", native)
    decoder = SeriesDecoder()
    first = decoded(decoder, body)
    again = decoded(decoder, body)  # natively: the blocks are known now
    assert again == first
    return first


def decoded(decoder: SeriesDecoder, body: bytes) -> object:
    try:
        got = decoder.decode(body, max_decompressed_bytes=LIMIT)
    except PermanentError as e:
        return (type(e).__name__, str(e))
    b = got.batch
    return (
        [(s.name, sorted(s.labels.items())) for s in b.series],
        list(b.offsets),
        list(b.timestamps),
        [struct.pack("<d", v) for v in b.values],
        got.metadata,
        got.series,
    )


UP = [("__name__", "up"), ("job", "a")]


def with_metadata(data: bytes, kind: int) -> bytes:
    req = WriteRequest()
    req.metadata.add(type=kind, metric_family_name="up", help="h", unit="")
    return data + bytes(req.SerializeToString())


CASES = [
    pytest.param(snappy(b""), id="empty-request"),
    pytest.param(snappy(request([(UP, [(5, 1.0)])])), id="one-sample"),
    pytest.param(
        snappy(request([(UP, [(-1, math.nan), (2**63 - 1, math.inf), (-(2**63), STALE)])])),
        id="nan-inf-stale-extreme-timestamps",
    ),
    pytest.param(snappy(request([(UP, [])])), id="empty-series"),
    pytest.param(
        snappy(request([(UP, [(1, 1.0)]), ([("__name__", "x")], [(2, 2.0)]), (UP, [(3, 3.0)])])),
        id="repeated-series",
    ),
    pytest.param(
        snappy(request([([("job", "a"), ("__name__", "up")], [(1, 1.0)])])), id="unsorted"
    ),
    pytest.param(snappy(request([([("__name__", "up"), ("__name__", "up")], [])])), id="duplicate"),
    pytest.param(snappy(request([([("job", "a")], [(1, 1.0)])])), id="no-metric-name"),
    pytest.param(snappy(request([([("__name__", "up"), ("1bad", "v")], [])])), id="bad-name"),
    pytest.param(snappy(request([([("__name__", "u"), ("k", "v" * 200)], [(1, 1)])])), id="long"),
    pytest.param(snappy(request([(UP, [(1, 1.0)])])[:-3]), id="truncated-protobuf"),
    pytest.param(b"\xff\xff\xff\xff\x0f", id="bad-snappy"),
    pytest.param(snappy(with_metadata(request([(UP, [(1, 1.0)])]), 1)), id="metadata"),
    pytest.param(snappy(with_metadata(request([(UP, [(1, 1.0)])]), 99)), id="bad-metadata"),
    pytest.param(b"\x80\x80\x80\x04" + b"\x00" * 8, id="over-limit-length"),
]


@pytest.mark.parametrize("body", CASES)
def test_native_matches_python(body: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    assert remote_write_native.AVAILABLE, "meshfed_native not built: run `make setup`"
    native = outcome(body, native=True, monkeypatch=monkeypatch)
    assert native == outcome(body, native=False, monkeypatch=monkeypatch)


def random_body(rng: random.Random) -> bytes:
    names = ["up", "http_requests_total", "a:b", "9bad"]
    series = []
    for _ in range(rng.randrange(0, 12)):
        labels = [("__name__", rng.choice(names))]
        labels += [(f"l{i}", rng.choice(["x", "", "y" * rng.randrange(1, 150)])) for i in range(3)]
        if rng.random() < 0.1:
            rng.shuffle(labels)
        values = [1.5, -0.0, math.nan, math.inf, -math.inf, STALE, 1e308]
        stamps = [0, 1, -1, 2**62, -(2**63), 2**63 - 1, 1_700_000_000_000]
        samples = [(rng.choice(stamps), rng.choice(values)) for _ in range(rng.randrange(0, 4))]
        series.append((labels, samples))
    if series and rng.random() < 0.3:
        series.append(rng.choice(series))
    data = request(series)
    if data and rng.random() < 0.1:
        data = data[: rng.randrange(len(data))]
    return snappy(data)


@pytest.mark.parametrize("seed", [pytest.param(s, id=f"seed-{s}") for s in range(3)])
def test_native_matches_python_on_random_bodies(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(seed)
    for _ in range(150):
        body = random_body(rng)
        native = outcome(body, native=True, monkeypatch=monkeypatch)
        assert native == outcome(body, native=False, monkeypatch=monkeypatch)


def test_common_layout_takes_the_native_path() -> None:
    data = request([(UP, [(1, 1.0)]), (UP, [(2, 2.0)])])
    blocks = remote_write_native.label_blocks(10)
    columns = remote_write_native.columns(data, blocks)
    assert columns is not None
    made = columns[0]  # a plain new block: validated and made natively
    assert made is not None
    assert [(s.name, s.labels, type(s)) for s in made] == [("up", {"job": "a"}, SeriesLabels)]
    assert columns[1] == []
    assert columns[6] == 2
    decoder = SeriesDecoder()
    first = decoder.decode(snappy(data), max_decompressed_bytes=LIMIT).batch
    known = remote_write_native.columns(data, decoder._blocks)  # its native cache
    assert known is not None
    assert known[0] == first.series  # the same series object, made natively once
    assert known[0][0] is first.series[0]


@pytest.mark.parametrize(
    "labels",
    [
        pytest.param([("job", "a"), ("__name__", "up")], id="unsorted"),
        pytest.param([("__name__", "up"), ("job", "a"), ("job", "b")], id="duplicate"),
        pytest.param([("__name__", "1up")], id="bad-metric-name"),
        pytest.param([("__name__", "up"), ("a-b", "x")], id="bad-label-name"),
        pytest.param([("job", "a")], id="no-name"),
        pytest.param([("__name__", "")], id="empty-name"),
    ],
)
def test_python_validates_what_is_not_plainly_valid(labels: list[tuple[str, str]]) -> None:
    """The native side learns only blocks Python accepts without an error; for the others
    it hands Python the raw blocks, and Python raises the sender's error."""
    data = request([(UP, [(1, 1.0)]), (labels, [(1, 1.0)])])
    columns = remote_write_native.columns(data, remote_write_native.label_blocks(10))
    assert columns is not None
    assert columns[0] is None
    assert len(columns[1]) == 2  # both distinct raw blocks, the valid one learnt already
    with pytest.raises(PermanentError):
        SeriesDecoder().decode(snappy(data), max_decompressed_bytes=LIMIT)


def test_the_native_cache_is_bounded() -> None:
    decoder = SeriesDecoder(max_cached_series=2)
    for job in "abc":
        body = snappy(request([([("__name__", "up"), ("job", job)], [(1, 1.0)])]))
        decoder.decode(body, max_decompressed_bytes=LIMIT)
    assert len(decoder._blocks) == 1  # cleared when full, then one learnt

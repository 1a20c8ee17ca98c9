"""The native per-series packing against the Python one: the same write-script arguments.

The write script parses whatever bytes it gets, so a difference would store wrong samples
or fail a write; every case packs with both and compares byte for byte. Where a Rust
toolchain exists ``make setup`` builds the native module, so its absence there is a
failure, not a skip.
"""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.store import metrics_pack
from collectors.store.chunks import STALE_NAN
from collectors.store.metrics_pack import Info, pack_distinct, pack_native, shard_calls
from tests.helpers.native import require_native

T0 = 1_700_000_000_000
SHARDS = 16


@pytest.fixture(autouse=True)
def _native_installed() -> None:
    require_native(
        metrics_pack._native_pack is not None, what="pack_series", fallback="the Python packing"
    )


def _infos(n: int, rng: random.Random) -> list[Info]:
    out = []
    for i in range(n):
        sid = str(rng.getrandbits(62))
        prefix = f"{len(sid):04x}{sid}|tenant-{i % 3}|labels-{'x' * rng.randrange(40)}".encode()
        out.append((sid, int(sid) % SHARDS, prefix))
    return out


def _python(
    infos: list[Info], o: list[int], ts: list[int], vs: list[float]
) -> list[tuple[int, bytes]]:
    per_shard, ignored, conflicts = pack_distinct(infos, o, ts, vs)
    assert ignored == conflicts == 0
    return shard_calls(per_shard)


@pytest.mark.parametrize(
    ("counts", "values"),
    [
        pytest.param([1] * 5, [1.0, -0.0, math.inf, -math.inf, 2.5], id="one-sample-each"),
        pytest.param([4, 1, 3], [0.0] * 8, id="several-samples"),
        pytest.param([2], [math.nan, STALE_NAN], id="nan-payloads-kept"),
        pytest.param([1, 1], [2.0**53, -(2.0**63)], id="large-values"),
        pytest.param([3] * 1500, [float(i) for i in range(4500)], id="over-one-call-per-shard"),
        pytest.param([], [], id="empty"),
    ],
)  # fmt: skip
def test_named_batches_pack_the_same(counts: list[int], values: list[float]) -> None:
    rng = random.Random(len(counts))
    infos = _infos(len(counts), rng)
    o = [0]
    ts: list[int] = []
    for c in counts:
        ts += [T0 + 15_000 * k for k in range(c)]
        o.append(o[-1] + c)
    native = pack_native(infos, o, ts, values, shards=SHARDS)
    assert native == _python(infos, o, ts, values)


@pytest.mark.parametrize(
    "ts",
    [
        pytest.param([T0, T0], id="repeated-timestamp"),
        pytest.param([T0 + 1, T0], id="out-of-order"),
    ],
)
def test_a_series_to_sort_is_left_to_python(ts: list[int]) -> None:
    infos = _infos(1, random.Random(1))
    assert pack_native(infos, [0, 2], ts, [1.0, 2.0], shards=SHARDS) is None


@pytest.mark.parametrize(
    "runs",
    [
        pytest.param([0, 0], id="same-info-twice"),
        pytest.param([0, 1, 0], id="apart"),
    ],
)
def test_a_series_in_several_runs_is_left_to_python(runs: list[int]) -> None:
    """The writer merges such runs first (``pack_grouped`` sorts and de-duplicates across
    them): the write script takes a series at most once per call."""
    distinct = _infos(2, random.Random(3))
    infos = [distinct[i] for i in runs]
    o = list(range(len(runs) + 1))
    ts = [T0 + i for i in range(len(runs))]
    assert pack_native(infos, o, ts, [1.0] * len(runs), shards=SHARDS) is None


def test_a_timestamp_beyond_int64_is_left_to_python() -> None:
    infos = _infos(1, random.Random(2))
    assert pack_native(infos, [0, 1], [2**63], [1.0], shards=SHARDS) is None


@settings(max_examples=200, deadline=None)
@given(
    counts=st.lists(st.integers(min_value=0, max_value=6), max_size=60),
    seed=st.integers(min_value=0, max_value=2**32),
    negative=st.booleans(),
)
def test_any_batch_of_increasing_series_packs_the_same(
    counts: list[int], seed: int, negative: bool
) -> None:
    rng = random.Random(seed)
    infos = _infos(len(counts), rng)
    o = [0]
    ts: list[int] = []
    for c in counts:
        t = rng.randrange(-(2**40), 2**40) if negative else T0 + rng.randrange(10**6)
        for _ in range(c):
            t += rng.randrange(1, 60_000)
            ts.append(t)
        o.append(o[-1] + c)
    vs = [rng.choice([rng.random() * 1e9, float(rng.randrange(100)), math.nan]) for _ in ts]
    assert pack_native(infos, o, ts, vs, shards=SHARDS) == _python(infos, o, ts, vs)

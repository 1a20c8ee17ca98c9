"""``bench/remote_write.py --split-creation``: the first phase must hold the first sample of
every series and the second none, or the phase figures would time the wrong work."""

from __future__ import annotations

import re
from types import ModuleType

import cramjam
import pytest

from tests.helpers.bench_scripts import load_bench_script
from tests.helpers.paths import REPO_ROOT


def _bench() -> ModuleType:
    return load_bench_script(REPO_ROOT / "bench" / "remote_write.py")


_SERIES_LABEL = re.compile(rb"\n\x06series\x12(.)", re.DOTALL)


def _series_of(body: bytes) -> list[str]:
    """The ``series`` label of every sample of a bench body (one ``TimeSeries`` each)."""
    data = bytes(cramjam.snappy.decompress_raw(body))
    out = []
    for match in _SERIES_LABEL.finditer(data):
        start = match.end()
        out.append(data[start : start + match.group(1)[0]].decode())
    return out


@pytest.mark.parametrize(
    ("series", "rounds", "per_request", "shards"),
    [
        pytest.param(10, 3, 4, 4, id="round-ends-inside-a-request"),
        pytest.param(16, 5, 2, 4, id="round-fills-whole-requests"),
        pytest.param(7, 2, 100, 3, id="uneven-shards-one-request-each"),
        pytest.param(3, 4, 1, 4, id="a-shard-without-series"),
    ],
)
def test_creation_phase_holds_every_first_sample(
    series: int, rounds: int, per_request: int, shards: int
) -> None:
    bench = _bench()
    bodies = bench.payloads(series, rounds, per_request, 0, shards)
    creation, append = bench.creation_phases(bodies, series, per_request)
    for shard, whole in enumerate(bodies):
        assert creation[shard] + append[shard] == whole
    first = [s for shard in creation for body in shard for s in _series_of(body)]
    later = [s for shard in append for body in shard for s in _series_of(body)]
    assert set(first) == {str(i) for i in range(series)}
    assert len(first) + len(later) == series * rounds
    # the creation phase holds at most one request per shard beyond the first round
    assert len(first) < series + shards * per_request

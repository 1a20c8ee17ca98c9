"""Scale-out: two ``meshfed collect`` processes writing into one 3-master Redis Cluster.

The cluster is the session fixture of this directory (three Debian ``redis-server
--cluster-enabled yes`` on loopback, from ``tests.helpers.redis_cluster``). Two real collector
processes (the CLI, as deployed) get remote_write traffic at the same time: each has series of
its own (disjoint) and both get the same samples of shared series (overlapping: a highly
available Prometheus pair sends each sample twice). Afterwards every series holds each of its
samples exactly once (none lost, none duplicated), the label index is one (series, label names
and values read through either collector are the same and are what was sent) and queries agree.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from collectors.store.metrics_module import installed_module
from tests.helpers.redis_cluster import RedisCluster, cluster_collector
from tests.helpers.remote_write import HEADERS, Series, encode_write_request, snappy_block

pytestmark = pytest.mark.timeout(120)

ROUNDS = 20
SERIES = 20
"""Per collector of its own, and as many shared ones."""
STEP_MS = 15_000


def _series(group: str, i: int) -> dict[str, str]:
    return {"__name__": f"scale_{i % 3}", "group": group, "instance": f"{group}-{i}"}


def _send(url: str, own: str, t0: int, barrier: threading.Barrier) -> None:
    """ROUNDS requests in time order: this collector's own series and the shared ones.

    Both senders finish a round before either starts the next (as an HA Prometheus pair
    scraping the same targets stays within a scrape of each other): the shared samples of a
    round arrive twice, concurrently, and never after a newer one (which any Prometheus-like
    store refuses as out of order)."""
    with httpx.Client(base_url=url, timeout=60) as client:
        for k in range(ROUNDS):
            ts = t0 + k * STEP_MS
            batch: list[Series] = [
                (_series(group, i), [(ts, float(i * 1000 + k))])
                for group in (own, "shared")
                for i in range(SERIES)
            ]
            body = snappy_block(encode_write_request(batch))
            r = client.post("/api/v1/write", content=body, headers=HEADERS)
            assert r.status_code == 204, r.text
            barrier.wait(timeout=60)


def _get(client: httpx.Client, path: str, **params: str) -> object:
    r = client.get(path, params=params)
    r.raise_for_status()
    body = r.json()
    assert body["status"] == "success", body
    return body["data"]


def _view(url: str, t0: int) -> dict[str, object]:
    end = str((t0 + ROUNDS * STEP_MS) / 1000)
    with httpx.Client(base_url=url, timeout=60) as client:
        counts = _get(
            client, "/api/v1/query", query=f"count_over_time({{group!=''}}[{ROUNDS}m])", time=end
        )
        sums = _get(
            client,
            "/api/v1/query",
            query=f"sum by (group) (sum_over_time({{group!=''}}[{ROUNDS}m]))",
            time=end,
        )
        series = _get(client, "/api/v1/series", **{"match[]": "{group!=''}"})
        names = _get(client, "/api/v1/labels")
        groups = _get(client, "/api/v1/label/group/values")
    assert isinstance(counts, dict) and isinstance(sums, dict) and isinstance(series, list)
    return {
        "counts": sorted(
            (tuple(sorted(r["metric"].items())), r["value"][1]) for r in counts["result"]
        ),
        "sums": sorted((r["metric"]["group"], r["value"][1]) for r in sums["result"]),
        "series": sorted(tuple(sorted(s.items())) for s in series),
        "names": names,
        "groups": groups,
    }


def test_two_collectors_one_cluster(redis_cluster: RedisCluster, tmp_path: Path) -> None:
    redis_cluster.flush()
    t0 = (int(time.time()) - 3600) * 1000
    with (
        cluster_collector(redis_cluster, tmp_path / "one") as one,
        cluster_collector(redis_cluster, tmp_path / "two") as two,
    ):
        barrier = threading.Barrier(2)
        with ThreadPoolExecutor(2) as pool:
            sent = [
                pool.submit(_send, url, own, t0, barrier)
                for url, own in ((one, "one"), (two, "two"))
            ]
            for f in sent:
                f.result()
        a, b = _view(one, t0), _view(two, t0)
    assert a == b  # either collector answers the same
    expected_series = sorted(
        tuple(sorted(_series(g, i).items()))
        for g in ("one", "two", "shared")
        for i in range(SERIES)
    )
    assert a["series"] == expected_series  # one label index, exactly what was sent
    assert a["groups"] == ["one", "shared", "two"]
    assert a["names"] == ["__name__", "group", "instance"]
    counts = a["counts"]
    assert isinstance(counts, list) and len(counts) == 3 * SERIES
    assert {c for _, c in counts} == {str(ROUNDS)}  # every sample once: none lost, none twice
    per_group = sum(i * 1000 * ROUNDS + ROUNDS * (ROUNDS - 1) // 2 for i in range(SERIES))
    assert a["sums"] == [(g, str(per_group)) for g in ("one", "shared", "two")]
    # The nodes load meshfed's write module when it is built: the production write path
    # (the module for known and new series alike) is the one that held the above.
    assert (redis_cluster.module_calls() > 0) == (installed_module() is not None)

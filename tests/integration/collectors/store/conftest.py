"""Real Redis servers for every store test: the embedded store, a 3-master Redis Cluster.

- ``redis_cluster`` (session): three ``redis-server --cluster-enabled yes`` from Debian on free
  127.0.0.1 ports, joined with ``redis-cli --cluster create``, stopped at session end
  (``tests.helpers.redis_cluster``, which the scale-out benchmark shares).
- ``embedded_settings``: StoreSettings for a private embedded Redis in ``tmp_path``.
- ``store``: a started ``TelemetryStore``, parametrised over ``embedded`` and ``cluster``
  (the cluster is flushed before each test). Metrics tests use small chunks and few shards
  so that cuts and multi-slot pipelines happen with little data.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from collectors.store.config import ChunkSettings, RedisSettings, StoreSettings
from collectors.store.store import TelemetryStore
from tests.helpers.redis_cluster import RedisCluster, require_redis_tools
from tests.helpers.redis_cluster import redis_cluster as start_redis_cluster


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    try:
        require_redis_tools()
    except RuntimeError as e:
        pytest.fail(str(e))
    with start_redis_cluster(tmp_path_factory.mktemp("cluster")) as cluster:
        yield cluster


def small_settings(**redis_fields: object) -> StoreSettings:
    """Store settings with small chunks and 4 shards (cuts and cross-slot work early)."""
    return StoreSettings(
        redis=RedisSettings(**redis_fields),  # type: ignore[arg-type]
        chunks=ChunkSettings(max_samples=8, shards=4),
    )


@pytest.fixture
def embedded_settings(tmp_path: Path) -> StoreSettings:
    return small_settings(url=None, data_dir=tmp_path / "redis")


@pytest.fixture(params=["embedded", "cluster"])
async def store(
    request: pytest.FixtureRequest, embedded_settings: StoreSettings
) -> AsyncIterator[TelemetryStore]:
    """A started TelemetryStore on the embedded Redis or on the 3-master cluster."""
    settings = embedded_settings
    if request.param == "cluster":
        cluster: RedisCluster = request.getfixturevalue("redis_cluster")
        cluster.flush()
        settings = replace(settings, redis=RedisSettings(url=cluster.url))
    telemetry = TelemetryStore(settings=settings)
    await telemetry.start()
    try:
        yield telemetry
    finally:
        await telemetry.shutdown()

"""A real Prometheus 2.42 and meshfed's query API holding the same samples.

The samples go into Prometheus by remote_write and into meshfed's ``TelemetryStore``
(embedded Redis) through ``write_samples``; the query app is served by uvicorn from the
same event loop as the store.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.applications import Starlette

from collectors._core.model import Sample
from collectors.api.app import build_app
from collectors.api.prometheus import PrometheusApiSettings
from collectors.store.config import RedisSettings, StoreSettings
from collectors.store.store import TelemetryStore
from tests.helpers.prometheus_dataset import make_dataset
from tests.helpers.prometheus_remote import Series, remote_write, running_prometheus, serving_async


@dataclass(frozen=True)
class Peers:
    prometheus_url: str
    meshfed_url: str
    t0_ms: int


def store_app_factory(data_dir: Path, series: list[Series]):  # type: ignore[no-untyped-def]
    """An app factory that starts an embedded-Redis store, writes ``series`` and serves."""

    @contextlib.asynccontextmanager
    async def factory() -> AsyncIterator[Starlette]:
        store = TelemetryStore(settings=StoreSettings(redis=RedisSettings(data_dir=data_dir)))
        await store.start()
        try:
            samples = [
                Sample(
                    name=labels["__name__"],
                    labels={k: v for k, v in labels.items() if k != "__name__"},
                    timestamp_ms=t,
                    value=v,
                )
                for labels, points in series
                for t, v in points
            ]
            for i in range(0, len(samples), 5000):
                result = await store.write_samples(samples[i : i + 5000])
                assert result.accepted == len(samples[i : i + 5000]), result
            yield build_app(store=store, settings=PrometheusApiSettings())
        finally:
            await store.shutdown()

    return factory


@pytest.fixture(scope="session")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peers]:
    workdir: Path = tmp_path_factory.mktemp("prometheus")
    t0, series = make_dataset()
    factory = store_app_factory(tmp_path_factory.mktemp("redis"), series)
    with running_prometheus(workdir) as prom_url, serving_async(factory) as meshfed_url:
        remote_write(f"{prom_url}/api/v1/write", series)
        yield Peers(prom_url, meshfed_url, t0)

"""Refusals under pressure and pull mode, against a real collector and a real Prometheus.

``Collector`` (what ``meshfed collect`` runs) serves over an embedded Redis. remote_write
must answer 429 (Prometheus retries 429 with backoff; any other 4xx would drop the data)
while the memory limiter refuses, and store nothing; OTLP/HTTP must refuse what exceeds
``max_concurrent_requests`` with 429 and count it, while the admitted requests are stored.
Pull mode federates from a real Prometheus 2.42 (Debian ``prometheus``) that scrapes itself:
the series meshfed stores carry Prometheus's value and labels plus the target's ``cluster``.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from collectors.app.collector import Collector
from collectors.app.config import CollectorConfig, HttpSettings
from collectors.pipeline.memory import MemorySettings
from collectors.pipeline.pipeline import PipelineSettings
from collectors.receivers.otlp.config import OtlpSettings
from collectors.receivers.otlp.http import OtlpHttpReceiver
from collectors.receivers.prometheus.config import PullSettings, PullTarget
from collectors.store.config import RedisSettings, StoreSettings
from tests.helpers.processes import free_port, stop, wait_http_ok
from tests.helpers.remote_write import HEADERS, encode_write_request, snappy_block

pytestmark = pytest.mark.timeout(180)


def _config(tmp_path: Path, **sections: object) -> CollectorConfig:
    base: dict[str, object] = {
        "http": HttpSettings(listen="127.0.0.1:0"),
        "store": StoreSettings(redis=RedisSettings(data_dir=tmp_path / "redis")),
        "statsd": None,
        "forward": None,
        "otlp": None,
    }
    return CollectorConfig(**{**base, **sections})  # type: ignore[arg-type]


async def _started(config: CollectorConfig) -> Collector:
    collector = Collector(config=config)
    await collector.start()
    return collector


async def test_remote_write_answers_429_while_the_memory_limiter_refuses(tmp_path: Path) -> None:
    # A Python collector idles above 64 MiB: refusing starts at 63 MiB, so from the start.
    memory = MemorySettings(limit_mib=64, spike_mib=1)
    collector = await _started(_config(tmp_path, pipeline=PipelineSettings(memory=memory)))
    try:
        url = f"http://127.0.0.1:{collector.http_port}"
        body = snappy_block(
            encode_write_request([({"__name__": "refused_total", "job": "x"}, [(1_000, 1.0)])])
        )
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            answers = [
                (await client.post("/api/v1/write", content=body, headers=HEADERS)).status_code
                for _ in range(3)
            ]
            found = (await client.get("/api/v1/series", params={"match[]": "refused_total"})).json()
        assert answers == [429, 429, 429]
        assert found["data"] == []
        refused = collector.registry.get_sample_value(
            "meshfed_receiver_rejected_total",
            {"receiver": "remote_write", "reason": "memory_limit"},
        )
        assert refused == 3
    finally:
        await collector.shutdown()


def _spans(request: int, n: int) -> bytes:
    body = ExportTraceServiceRequest()
    rs = body.resource_spans.add()
    rs.resource.attributes.add(key="service.name").value.string_value = "busy"
    scope = rs.scope_spans.add()
    now = time.time_ns()
    for i in range(n):
        scope.spans.add(
            trace_id=(request * 1_000_003 + i + 1).to_bytes(16, "big"),
            span_id=(i + 1).to_bytes(8, "big"),
            name=f"op-{i % 7}",
            start_time_unix_nano=now - 1_000_000,
            end_time_unix_nano=now,
        )
    return body.SerializeToString()


async def test_otlp_refuses_requests_over_the_concurrency_limit(tmp_path: Path) -> None:
    otlp = OtlpSettings(
        grpc_listen="127.0.0.1:0", http_listen="127.0.0.1:0", max_concurrent_requests=1
    )
    collector = await _started(_config(tmp_path, otlp=otlp))
    try:
        receiver = collector.receivers["otlp_http"]
        assert isinstance(receiver, OtlpHttpReceiver)
        url = f"http://127.0.0.1:{receiver.port}/v1/traces"
        requests, spans = 24, 500
        bodies = [_spans(r, spans) for r in range(requests)]
        headers = {"Content-Type": "application/x-protobuf"}
        limits = httpx.Limits(max_connections=requests)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            answers = await asyncio.gather(
                *(client.post(url, content=b, headers=headers) for b in bodies)
            )
        codes = [a.status_code for a in answers]
        assert set(codes) <= {200, 429}, codes
        assert codes.count(429) >= 1, "24 concurrent requests never overlapped"
        assert codes.count(200) >= 1
        assert all(a.headers.get("retry-after") for a in answers if a.status_code == 429)
        registry = collector.registry
        refused = registry.get_sample_value(
            "meshfed_receiver_rejected_total",
            {"receiver": "otlp_http", "reason": "too_many_requests"},
        )
        stored = registry.get_sample_value(
            "meshfed_receiver_stored_total", {"receiver": "otlp_http", "signal": "spans"}
        )
        assert refused == codes.count(429)
        assert stored == codes.count(200) * spans
    finally:
        await collector.shutdown()


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[str]:
    """A real Prometheus 2.42 scraping itself every second."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise RuntimeError("prometheus is not installed: apt-get install -y prometheus")
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: self\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
    )
    log = tmp_path / "prometheus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_http_ok(f"{url}/-/ready", proc, what="prometheus", log=log, timeout_s=60)
            yield url
        finally:
            stop(proc)


async def _query(client: httpx.AsyncClient, base: str, query: str) -> list[dict[str, object]]:
    r = await client.get(f"{base}/api/v1/query", params={"query": query})
    r.raise_for_status()
    result: list[dict[str, object]] = r.json()["data"]["result"]
    return result


@pytest.fixture
async def puller(tmp_path: Path, prometheus: str) -> AsyncIterator[str]:
    target = PullTarget(
        cluster="c1",
        url=prometheus,
        selectors=('{job="self",__name__="prometheus_build_info"}', 'up{job="self"}'),
        interval_s=1,
        timeout_s=1,
    )
    collector = await _started(_config(tmp_path, pull=PullSettings(targets=(target,))))
    try:
        yield f"http://127.0.0.1:{collector.http_port}"
    finally:
        await collector.shutdown()


async def test_pull_mode_federates_from_a_real_prometheus(prometheus: str, puller: str) -> None:
    wanted = 'prometheus_build_info{job="self"}'
    async with httpx.AsyncClient(timeout=10) as client:
        deadline = time.monotonic() + 90
        ours: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            ours = await _query(client, puller, wanted)
            if ours:
                break
            await asyncio.sleep(1)
        theirs = await _query(client, prometheus, wanted)
        up = await _query(client, puller, 'up{job="self",cluster="c1"}')
        other = await _query(client, puller, "prometheus_http_requests_total")
    assert ours, "meshfed never stored the federated series"
    assert len(ours) == len(theirs) == 1
    mine, peer = ours[0]["metric"], theirs[0]["metric"]
    assert isinstance(mine, dict) and isinstance(peer, dict)
    assert mine == {**peer, "cluster": "c1"}
    assert ours[0]["value"][1] == theirs[0]["value"][1] == "1"  # type: ignore[index]
    assert len(up) == 1 and up[0]["value"][1] == "1"  # type: ignore[index]
    assert other == []  # only the selected series are pulled

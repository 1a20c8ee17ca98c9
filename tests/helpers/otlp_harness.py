"""Shared parts of the OTLP integration tests: receivers on free ports over an embedded store.

The ``running`` fixture (defined as ``running_fixture``: import that name into a test module)
is module scoped: one embedded Redis and one gRPC + HTTP receiver pair per test module, with a
query client on the store's API. The raw clients (``grpc_export``, ``post``) and the request
builder serve the error-path tests, where the SDK exporters would hide the answers.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import pytest
import pytest_asyncio
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client import CollectorRegistry

from collectors._core.selfmetrics import ReceiverMetricFamilies, ReceiverMetrics
from collectors.api.app import build_app
from collectors.api.prometheus import PrometheusApiSettings
from collectors.receivers.otlp.config import OtlpSettings
from collectors.receivers.otlp.grpc import OtlpGrpcReceiver
from collectors.receivers.otlp.http import OtlpHttpReceiver
from collectors.store.config import RedisSettings, StoreSettings
from collectors.store.store import TelemetryStore

LIMIT = 256 * 1024
SETTINGS = OtlpSettings(
    grpc_listen="127.0.0.1:0", http_listen="127.0.0.1:0", max_message_bytes=LIMIT
)
TRACE_PATH = "opentelemetry.proto.collector.trace.v1.TraceService/Export"
PB = {"Content-Type": "application/x-protobuf"}


@dataclass
class Running:
    store: TelemetryStore
    grpc_port: int
    http_port: int
    registry: CollectorRegistry
    query: httpx.AsyncClient

    def count(self, family: str, **labels: str) -> float:
        value = self.registry.get_sample_value(family, {"receiver": "otlp", **labels})
        return value or 0.0


async def start_receivers(
    store: TelemetryStore, settings: OtlpSettings, registry: CollectorRegistry
) -> tuple[OtlpGrpcReceiver, OtlpHttpReceiver]:
    """Both receivers writing to ``store``, counting into ``registry`` (``receiver="otlp"``)."""
    metrics = ReceiverMetrics(families=ReceiverMetricFamilies.create(registry), receiver="otlp")
    grpc_rx = OtlpGrpcReceiver(settings=settings, sink=store, metrics=metrics)
    http_rx = OtlpHttpReceiver(settings=settings, sink=store, metrics=metrics)
    await grpc_rx.start()
    await http_rx.start()
    return grpc_rx, http_rx


@pytest_asyncio.fixture(name="running", scope="module", loop_scope="module")
async def running_fixture(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Running]:
    settings = StoreSettings(
        redis=RedisSettings(url=None, data_dir=tmp_path_factory.mktemp("otlp") / "redis")
    )
    store = TelemetryStore(settings=settings)
    await store.start()
    registry = CollectorRegistry()
    grpc_rx, http_rx = await start_receivers(store, SETTINGS, registry)
    app = build_app(store=store, settings=PrometheusApiSettings())
    query = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://q")
    try:
        yield Running(store, grpc_rx.port, http_rx.port, registry, query)
    finally:
        await query.aclose()
        await http_rx.shutdown()
        await grpc_rx.shutdown()
        await store.shutdown()


def trace_request(span_ids: list[bytes], name: str) -> ExportTraceServiceRequest:
    """One span per id (random trace ids), all named ``name``."""
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for span_id in span_ids:
        scope.spans.add(
            trace_id=uuid.uuid4().bytes,
            span_id=span_id,
            name=name,
            start_time_unix_nano=time.time_ns() - 1000,
            end_time_unix_nano=time.time_ns(),
        )
    return request


async def post(
    running: Running, body: bytes, headers: dict[str, str], path: str = "/v1/traces"
) -> httpx.Response:
    """``POST`` to the running OTLP/HTTP receiver."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{running.http_port}") as client:
        return await client.post(path, content=body, headers=headers)


async def grpc_export(port: int, body: bytes, **channel: Any) -> grpc.aio.AioRpcError | bytes:
    """A raw TraceService ``Export`` call: the answer's bytes, or the gRPC error."""
    credentials = channel.pop("credentials", None)
    target = f"127.0.0.1:{port}"
    options = [("grpc.max_send_message_length", 64 * 1024 * 1024)]
    async with (
        grpc.aio.secure_channel(target, credentials, options=options + channel.get("opts", []))
        if credentials
        else grpc.aio.insecure_channel(target, options=options)
    ) as ch:
        call = ch.unary_unary(f"/{TRACE_PATH}")
        try:
            result: bytes = await call(body, timeout=10)
        except grpc.aio.AioRpcError as e:
            return e
        return result

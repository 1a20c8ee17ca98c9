"""The limits every call to the status API is held to (request size, malformed requests,
concurrent RPCs) and health Watch, called with grpcio against the real server."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from federator.api._generated.meshfed.v1 import federation_pb2 as pb
from federator.api._generated.meshfed.v1 import federation_pb2_grpc as pb_grpc
from federator.api.server import SERVICE_NAME, ApiServer, ApiSettings
from tests.helpers.federator_api_harness import Api, api, until
from tests.helpers.federator_world import HOST_SUFFIX, populated_registry

pytestmark = pytest.mark.timeout(60)
__all__ = ["api"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        pytest.param(
            pb.ListServicesRequest(namespace="n" * (64 * 1024)).SerializeToString(),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            id="over-the-size-limit",
        ),
        pytest.param(b"\xff\xff\xff", grpc.StatusCode.INVALID_ARGUMENT, id="not-protobuf"),
    ],
)
async def test_bad_requests_are_refused_and_the_server_serves_on(
    api: Api, body: bytes, code: grpc.StatusCode
) -> None:
    raw = api.channel.unary_unary(
        "/meshfed.v1.FederationService/ListServices",
        request_serializer=lambda b: b,
        response_deserializer=pb.ListServicesResponse.FromString,
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await raw(body, timeout=5)
    assert caught.value.code() is code
    assert (await api.stub.ListClusters(pb.ListClustersRequest(), timeout=5)).clusters


async def test_concurrent_rpcs_are_bounded() -> None:
    server = ApiServer(
        status=populated_registry(),
        host_suffix=HOST_SUFFIX,
        listen="127.0.0.1:0",
        settings=ApiSettings(max_concurrent_rpcs=2, max_streams=8),
    )
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = pb_grpc.FederationServiceStub(channel)
            streams = [stub.WatchEvents(pb.WatchEventsRequest()) for _ in range(2)]

            async def two_open() -> bool:
                return server.open_streams == 2

            await until(two_open)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.ListClusters(pb.ListClustersRequest(), timeout=5)
            assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            streams[0].cancel()

            async def one_open() -> bool:
                return server.open_streams == 1

            await until(one_open)
            assert (await stub.ListClusters(pb.ListClustersRequest(), timeout=5)).clusters
            streams[1].cancel()
    finally:
        await server.shutdown()


async def test_health_watch_follows_readiness(api: Api) -> None:
    health = health_pb2_grpc.HealthStub(api.channel)
    watch = health.Watch(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
    first = await asyncio.wait_for(watch.read(), timeout=5)
    assert first.status == health_pb2.HealthCheckResponse.NOT_SERVING
    api.registry.set_ready(True)
    second = await asyncio.wait_for(watch.read(), timeout=5)
    assert second.status == health_pb2.HealthCheckResponse.SERVING
    unknown = health.Watch(health_pb2.HealthCheckRequest(service="no.such.Service"))
    third = await asyncio.wait_for(unknown.read(), timeout=5)
    assert third.status == health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
    watch.cancel()
    unknown.cancel()

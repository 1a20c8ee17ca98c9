"""Shared harness of the gRPC API tests: a real ApiServer over a real, populated
StatusRegistry, and a channel to it (no clusters needed)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import pytest

from federator.api._generated.meshfed.v1 import federation_pb2_grpc as pb_grpc
from federator.api.server import ApiServer, ApiSettings
from federator.status import StatusRegistry
from tests.helpers.federator_world import HOST_SUFFIX, populated_registry

SETTINGS = ApiSettings(stream_queue=64, health_poll_seconds=0.05, shutdown_grace_seconds=0.5)


class Api:
    def __init__(self, registry: StatusRegistry, server: ApiServer, channel: grpc.aio.Channel):
        self.registry = registry
        self.server = server
        self.channel = channel
        self.stub = pb_grpc.FederationServiceStub(channel)
        self.address = f"127.0.0.1:{server.port}"


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    registry = populated_registry()
    server = ApiServer(
        status=registry, host_suffix=HOST_SUFFIX, listen="127.0.0.1:0", settings=SETTINGS
    )
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield Api(registry, server, channel)
    await server.shutdown()


async def until(check: Callable[[], Awaitable[bool]], *, attempts: int = 200) -> None:
    """Retry ``check`` (bounded) until it holds; fail the test if it never does."""
    for _ in range(attempts):
        if await check():
            return
        await asyncio.sleep(0.02)
    pytest.fail("condition not reached")

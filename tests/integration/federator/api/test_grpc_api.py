"""The real status API over a real StatusRegistry, called with grpcio and the generated stubs.

No clusters are needed: the registry is filled directly, as the runner would fill it. Covers
every FederationService RPC and its error codes, health (follows readiness), reflection,
WatchEvents (delivery, filtering, a slow reader that cannot hold others up, shutdown).
The limits every call is held to: test_grpc_limits.py.
``meshfed status`` against the same server: test_status_cli.py.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from federator.api._generated.meshfed.v1 import federation_pb2 as pb
from federator.api._generated.meshfed.v1 import federation_pb2_grpc as pb_grpc
from federator.api.server import SERVICE_NAME, ApiServer, ApiSettings
from federator.core.diff import Plan
from federator.errors import PermanentError, RetryableError
from tests.helpers.federator_api_harness import Api, api, until
from tests.helpers.federator_world import (
    CART,
    HOST_SUFFIX,
    REVIEWS,
    change,
    populated_registry,
    world_plan,
)

pytestmark = pytest.mark.timeout(60)
__all__ = ["api"]


async def test_get_status(api: Api) -> None:
    status = await api.stub.GetStatus(pb.GetStatusRequest())
    assert not status.ready
    assert [c.name for c in status.clusters] == ["c1", "c2", "c3"]
    assert (status.services, status.conflicts) == (2, 1)
    assert status.HasField("last_applied_time")
    api.registry.set_ready(True)
    assert (await api.stub.GetStatus(pb.GetStatusRequest())).ready


async def test_list_clusters(api: Api) -> None:
    clusters = (await api.stub.ListClusters(pb.ListClustersRequest())).clusters
    summary = [(c.name, c.reachable, c.synced, c.stale) for c in clusters]
    assert summary == [
        ("c1", True, True, False),
        ("c2", True, True, False),
        ("c3", False, False, True),
    ]
    assert "connection refused" in clusters[2].error


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        pytest.param(pb.ListServicesRequest(), ["default/reviews", "shop/cart"], id="all"),
        pytest.param(pb.ListServicesRequest(namespace="shop"), ["shop/cart"], id="namespace"),
        pytest.param(pb.ListServicesRequest(namespace="nope"), [], id="empty-namespace"),
    ],
)
async def test_list_services(
    api: Api, request_: pb.ListServicesRequest, expected: list[str]
) -> None:
    services = (await api.stub.ListServices(request_)).services
    assert [f"{s.key.namespace}/{s.key.name}" for s in services] == expected
    for s in services:
        assert all(not e.endpoints for e in s.exporters)


async def test_list_services_with_endpoints(api: Api) -> None:
    response = await api.stub.ListServices(pb.ListServicesRequest(include_endpoints=True))
    reviews = response.services[0]
    assert reviews.host == "reviews.default.svc.clusterset.local"
    assert [(e.cluster, len(e.endpoints)) for e in reviews.exporters] == [("c1", 2), ("c2", 2)]
    assert [c.loser for c in reviews.conflicts] == ["c2"]
    assert [t.cluster for t in reviews.targets] == ["c1", "c2", "c3"]


@pytest.mark.parametrize(
    ("key", "code"),
    [
        pytest.param(pb.ServiceKey(namespace="shop", name="cart"), None, id="found"),
        pytest.param(
            pb.ServiceKey(namespace="shop", name="nope"), grpc.StatusCode.NOT_FOUND, id="unknown"
        ),
        pytest.param(
            pb.ServiceKey(namespace="shop"), grpc.StatusCode.INVALID_ARGUMENT, id="malformed"
        ),
    ],
)
async def test_get_service(api: Api, key: pb.ServiceKey, code: grpc.StatusCode | None) -> None:
    call = api.stub.GetService(pb.GetServiceRequest(key=key))
    if code is None:
        service = (await call).service
        assert (service.key.namespace, service.key.name) == (CART.namespace, CART.name)
        assert [e.endpoints[0].address for e in service.exporters] == ["10.2.1.1"]
        return
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() is code


async def test_plan(api: Api) -> None:
    calls = 0

    async def planner() -> Plan:
        nonlocal calls
        calls += 1
        return world_plan()

    api.registry.set_planner(planner)
    whole = await api.stub.Plan(pb.PlanRequest())
    assert [c.cluster for c in whole.clusters] == ["c1", "c3"]
    assert [a.op for a in whole.clusters[1].actions] == [
        pb.PLAN_OP_CREATE,
        pb.PLAN_OP_CREATE,
        pb.PLAN_OP_DELETE,
    ]
    assert not whole.noop
    assert "+ create ServiceEntry default/meshfed-reviews" in whole.text
    only_c1 = await api.stub.Plan(pb.PlanRequest(clusters=["c1"]))
    assert only_c1.noop
    assert [(c.cluster, c.unchanged) for c in only_c1.clusters] == [("c1", 2)]
    old = await api.stub.Plan(
        pb.PlanRequest(services=[pb.ServiceKey(namespace="shop", name="old")])
    )
    assert [a.name for c in old.clusters for a in c.actions] == ["meshfed-old"]
    assert calls == 3


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        pytest.param(
            pb.PlanRequest(clusters=["c9"]), grpc.StatusCode.INVALID_ARGUMENT, id="unknown-cluster"
        ),
        pytest.param(
            pb.PlanRequest(services=[pb.ServiceKey(name="x")]),
            grpc.StatusCode.INVALID_ARGUMENT,
            id="malformed-key",
        ),
        pytest.param(
            pb.PlanRequest(services=[pb.ServiceKey(namespace="a", name="b")]),
            grpc.StatusCode.NOT_FOUND,
            id="unknown-key",
        ),
    ],
)
async def test_plan_bad_requests(api: Api, request_: pb.PlanRequest, code: grpc.StatusCode) -> None:
    async def planner() -> Plan:
        return world_plan()

    api.registry.set_planner(planner)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.stub.Plan(request_)
    assert caught.value.code() is code


async def test_plan_unavailable(api: Api) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.stub.Plan(pb.PlanRequest())
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE  # no planner: not running yet

    async def unreachable() -> Plan:
        raise RetryableError("list ServiceEntries in c3 failed: connection refused")

    api.registry.set_planner(unreachable)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.stub.Plan(pb.PlanRequest())
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    assert "c3" in (caught.value.details() or "")


async def test_health_follows_readiness(api: Api) -> None:
    health = health_pb2_grpc.HealthStub(api.channel)

    async def status(service: str) -> int:
        request = health_pb2.HealthCheckRequest(service=service)
        return int((await health.Check(request)).status)

    serving = health_pb2.HealthCheckResponse.SERVING
    not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
    assert await status("") == not_serving
    assert await status(SERVICE_NAME) == not_serving
    api.registry.set_ready(True)

    async def both_serving() -> bool:
        return await status("") == serving and await status(SERVICE_NAME) == serving

    await until(both_serving)


async def test_reflection_lists_the_services(api: Api) -> None:
    def reflect() -> tuple[list[str], str]:
        with grpc.insecure_channel(api.address) as channel:
            db = ProtoReflectionDescriptorDatabase(channel)
            services = list(db.get_services())
            file = db.FindFileContainingSymbol("meshfed.v1.FederationService")
            return services, file.name

    services, file_name = await asyncio.to_thread(reflect)
    assert {SERVICE_NAME, "grpc.health.v1.Health"} <= set(services)
    assert file_name == "meshfed/v1/federation.proto"


async def read(call: grpc.aio.UnaryStreamCall, count: int) -> list[pb.Event]:
    return [await asyncio.wait_for(call.read(), timeout=10) for _ in range(count)]


async def open_streams(
    api: Api, *namespaces: str, already: int = 0
) -> list[grpc.aio.UnaryStreamCall]:
    """WatchEvents calls whose server-side subscriptions exist (``already``: other streams)."""
    calls = [api.stub.WatchEvents(pb.WatchEventsRequest(namespace=ns)) for ns in namespaces]

    async def subscribed() -> bool:
        return api.server.open_streams == already + len(calls)

    await until(subscribed)
    return calls


async def test_watch_events_delivers_and_filters(api: Api) -> None:
    everything, shop_only = await open_streams(api, "", "shop")
    api.registry.publish(change(1, key=REVIEWS, op="create"))
    api.registry.publish(change(2, key=CART, op="delete"))
    api.registry.publish(change(3, key=REVIEWS, op="patch"))
    events = await read(everything, 3)
    assert [(e.sequence, e.type, e.service.name, e.dropped_before) for e in events] == [
        (1, pb.EVENT_TYPE_CREATED, "reviews", 0),
        (2, pb.EVENT_TYPE_DELETED, "cart", 0),
        (3, pb.EVENT_TYPE_OTHER, "reviews", 0),
    ]
    assert events[0].kind == "ServiceEntry"
    (shop_event,) = await read(shop_only, 1)
    assert (shop_event.sequence, shop_event.service.namespace, shop_event.op) == (
        2,
        "shop",
        "delete",
    )
    everything.cancel()
    shop_only.cancel()

    async def closed() -> bool:
        return api.server.open_streams == 0

    await until(closed)


async def test_slow_subscriber_does_not_block_others(api: Api) -> None:
    """A stream nobody reads fills up and drops; the other stream gets every event."""
    # Its own connection without BDP probing, so its flow-control window stays at 64 KiB and
    # the server-side queue fills after a bounded number of events.
    slow_channel = grpc.aio.insecure_channel(api.address, options=[("grpc.http2.bdp_probe", 0)])
    slow = pb_grpc.FederationServiceStub(slow_channel).WatchEvents(pb.WatchEventsRequest())
    (fast,) = await open_streams(api, "", already=1)
    batch, batches = 32, 100  # 32 < stream_queue: the fast reader never overflows
    sequence = 0
    for _ in range(batches):
        for _ in range(batch):
            sequence += 1
            api.registry.publish(change(sequence))
        received = await read(fast, batch)
        assert [e.sequence for e in received] == list(range(sequence - batch + 1, sequence + 1))
        assert all(e.dropped_before == 0 for e in received)
    # Now read the slow stream; markers (also read by `fast`) show when it has caught up.
    first_marker = sequence + 1
    slow_events: list[pb.Event] = []

    async def drain_slow() -> None:
        while not slow_events or slow_events[-1].sequence < first_marker:
            slow_events.extend(await read(slow, 1))

    draining = asyncio.create_task(drain_slow())
    for _ in range(500):
        if draining.done():
            break
        sequence += 1
        api.registry.publish(change(sequence))
        assert [e.sequence for e in await read(fast, 1)] == [sequence]
        await asyncio.sleep(0.01)
    await asyncio.wait_for(draining, timeout=10)
    dropped = sum(e.dropped_before for e in slow_events)
    span = slow_events[-1].sequence - slow_events[0].sequence + 1
    assert dropped > 0, slow_events[:3]
    assert dropped + len(slow_events) == span
    slow.cancel()
    fast.cancel()
    await slow_channel.close()


async def test_watch_streams_are_bounded() -> None:
    registry = populated_registry()
    server = ApiServer(
        status=registry,
        host_suffix=HOST_SUFFIX,
        listen="127.0.0.1:0",
        settings=ApiSettings(max_streams=1),
    )
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = pb_grpc.FederationServiceStub(channel)
            first = stub.WatchEvents(pb.WatchEventsRequest())

            async def one_open() -> bool:
                return server.open_streams == 1

            await until(one_open)
            second = stub.WatchEvents(pb.WatchEventsRequest())
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await second.read()
            assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            first.cancel()
    finally:
        await server.shutdown()


async def test_shutdown_ends_streams_and_is_idempotent(api: Api) -> None:
    (stream,) = await open_streams(api, "")
    await api.server.shutdown()
    assert await asyncio.wait_for(stream.read(), timeout=10) is grpc.aio.EOF
    assert await stream.code() is grpc.StatusCode.OK
    await api.server.shutdown()
    with pytest.raises(RuntimeError, match="shut down"):
        await api.server.start()


async def test_start_refuses_a_port_in_use(api: Api) -> None:
    other = ApiServer(status=api.registry, host_suffix=HOST_SUFFIX, listen=api.address)
    try:
        with pytest.raises(PermanentError, match=r"listen\.grpc"):
            await other.start()
    finally:
        await other.shutdown()

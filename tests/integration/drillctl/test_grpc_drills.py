"""ListDrills and WatchDrills of the real gRPC API server, reading real Drill objects from the
sandbox's home cluster (c1) through ``federator.kube``, behind the bearer-token check; the
status RPCs are unaffected, and a federator without a home cluster says so."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from federator.api._generated.meshfed.v1 import federation_pb2 as pb
from federator.api._generated.meshfed.v1 import federation_pb2_grpc as pb_grpc
from federator.api.drill_source import DrillSource
from federator.api.server import ApiServer
from federator.core.config_security import ApiSecuritySettings
from federator.core.drills.journal import Event, EventType, new_journal, record
from federator.core.drills.journal_codec import to_status
from federator.core.drills.parse import parse_drill
from federator.core.model import ClusterId
from federator.kube.client import KubeClient
from federator.kube.clusters import HOME as HOME_ID
from federator.kube.clusters import file_credentials
from tests.helpers.federator_api_harness import SETTINGS
from tests.helpers.federator_world import HOST_SUFFIX, populated_registry
from tests.integration.drillctl.conftest import HOME, NAMESPACE, SERVICE, SERVICE_NS, Home

pytestmark = pytest.mark.timeout(420)  # the first test starts the sandbox
TOKEN = "drill-api-token"
AUTH = (("authorization", f"Bearer {TOKEN}"),)


def drill(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "meshfed.io/v1alpha1",
        "kind": "Drill",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "services": [{"namespace": SERVICE_NS, "name": SERVICE}],
            "ttl": "5m",
            "steps": [{"name": "delay", "duration": "1m",
                       "delay": {"percentage": 10, "fixedDelay": "2s"}}],
        },
    }  # fmt: skip


class Api:
    def __init__(self, server: ApiServer, channel: grpc.aio.Channel) -> None:
        self.server = server
        self.stub = pb_grpc.FederationServiceStub(channel)


async def _serve(tmp_path: Path, source: DrillSource) -> AsyncIterator[Api]:
    token = tmp_path / "token"
    token.write_text(TOKEN)
    registry = populated_registry()
    registry.set_ready(True)
    server = ApiServer(
        status=registry,
        host_suffix=HOST_SUFFIX,
        listen="127.0.0.1:0",
        settings=SETTINGS,
        security=ApiSecuritySettings(token_file=token),
        drills=source,
    )
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            yield Api(server, channel)
    finally:
        await server.shutdown()


@pytest.fixture
async def api(home: Home, tmp_path: Path) -> AsyncIterator[Api]:
    client = KubeClient(cluster=HOME_ID, credentials=file_credentials(str(home.kubeconfig), HOME))
    try:
        async for api in _serve(tmp_path, DrillSource(client=lambda: client)):
            yield api
    finally:
        await client.aclose()


async def kubectl(home: Home, *args: str, stdin: str | None = None) -> None:
    await asyncio.to_thread(home.kubectl, *args, stdin=stdin)


async def create(home: Home, name: str, *, status: bool = False) -> None:
    doc = drill(name)
    await kubectl(home, "apply", "-f", "-", stdin=yaml.safe_dump(doc))
    if status:
        spec = parse_drill(doc)
        journal = new_journal(spec.name, (ClusterId("c1"), ClusterId("c2")))
        for event in (
            Event(EventType.STARTED, 1_700_000_000.0),
            Event(EventType.PRECONDITIONS_PASSED, 1_700_000_000.5),
            Event(EventType.STEP_STARTED, 1_700_000_001.0, step=0),
            Event(EventType.STEP_APPLIED, 1_700_000_001.3, step=0, cluster=ClusterId("c1"),
                  latency=0.3),
        ):  # fmt: skip
            journal = record(journal, spec, event)
        body = json.dumps({"status": to_status(journal)})
        await kubectl(home, "patch", "drill", "-n", NAMESPACE, name, "--subresource=status",
                      "--type=merge", "-p", body)  # fmt: skip


async def delete(home: Home, *names: str) -> None:
    await asyncio.to_thread(
        home.kubectl, "delete", "drill", "-n", NAMESPACE, "--ignore-not-found", *names
    )


async def test_list_drills_with_auth(home: Home, api: Api) -> None:
    await create(home, "grpc-a", status=True)
    await create(home, "grpc-b")
    try:
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await api.stub.ListDrills(pb.ListDrillsRequest(namespace=NAMESPACE))
        assert denied.value.code() is grpc.StatusCode.UNAUTHENTICATED
        watch = api.stub.WatchDrills(pb.WatchDrillsRequest(namespace=NAMESPACE))
        with pytest.raises(grpc.aio.AioRpcError) as denied_watch:
            await watch.read()
        assert denied_watch.value.code() is grpc.StatusCode.UNAUTHENTICATED
        assert "grpc-a" not in (denied_watch.value.details() or "")
        listed = await api.stub.ListDrills(pb.ListDrillsRequest(namespace=NAMESPACE), metadata=AUTH)
        by_name = {d.name: d for d in listed.drills}
        assert [d.name for d in listed.drills if d.name.startswith("grpc-")] == ["grpc-a", "grpc-b"]
        a, b = by_name["grpc-a"], by_name["grpc-b"]
        assert (a.phase, a.step, a.step_name, a.steps) == ("Running", 0, "delay", 1)
        assert list(a.targets) == ["c1", "c2"] and list(a.applied) == ["c1"]
        assert a.started_time.seconds == 1_700_000_000 and a.created_time.seconds > 0
        assert (a.services[0].namespace, a.services[0].name) == (SERVICE_NS, SERVICE)
        assert (b.phase, b.step, b.verdict, b.error) == ("", -1, "", "")
        other = await api.stub.ListDrills(pb.ListDrillsRequest(namespace="nope"), metadata=AUTH)
        assert list(other.drills) == []
        status = await api.stub.GetStatus(pb.GetStatusRequest(), metadata=AUTH)
        assert status.ready
    finally:
        await delete(home, "grpc-a", "grpc-b")


async def _next(stream: Any) -> pb.DrillEvent:
    event: pb.DrillEvent = await asyncio.wait_for(stream.read(), timeout=20)
    return event


async def test_watch_drills_sends_the_current_set_then_changes(home: Home, api: Api) -> None:
    await create(home, "watch-a")
    stream = api.stub.WatchDrills(pb.WatchDrillsRequest(namespace=NAMESPACE), metadata=AUTH)
    try:
        first = await _next(stream)
        while first.drill.name != "watch-a":
            first = await _next(stream)
        assert first.type == pb.DRILL_EVENT_TYPE_ADDED and not first.drill.halt
        await kubectl(home, "patch", "drill", "-n", NAMESPACE, "watch-a", "--type=merge",
                      "-p", '{"spec": {"halt": true}}')  # fmt: skip
        modified = await _next(stream)
        assert (modified.type, modified.drill.name) == (pb.DRILL_EVENT_TYPE_MODIFIED, "watch-a")
        assert modified.drill.halt
        await create(home, "watch-b")
        added = await _next(stream)
        assert (added.type, added.drill.name) == (pb.DRILL_EVENT_TYPE_ADDED, "watch-b")
        await delete(home, "watch-a")
        deleted = await _next(stream)
        assert (deleted.type, deleted.drill.name) == (pb.DRILL_EVENT_TYPE_DELETED, "watch-a")
        assert api.server.open_streams == 1
    finally:
        stream.cancel()
        await delete(home, "watch-a", "watch-b")
    for _ in range(100):
        if api.server.open_streams == 0:
            break
        await asyncio.sleep(0.05)
    assert api.server.open_streams == 0


async def test_without_a_home_cluster_drills_are_failed_precondition(tmp_path: Path) -> None:
    async for api in _serve(tmp_path, DrillSource(client=lambda: None)):
        with pytest.raises(grpc.aio.AioRpcError) as no_home:
            await api.stub.ListDrills(pb.ListDrillsRequest(), metadata=AUTH)
        assert no_home.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert "no home cluster" in (no_home.value.details() or "")
        stream = api.stub.WatchDrills(pb.WatchDrillsRequest(), metadata=AUTH)
        with pytest.raises(grpc.aio.AioRpcError) as watch:
            await stream.read()
        assert watch.value.code() is grpc.StatusCode.FAILED_PRECONDITION

"""Forward receiver against real clients and a real (embedded) Redis store.

- Python fluent-logger (int time, EventTime) and the npm fluent-logger 3.x (Message,
  PackedForward, CompressedPackedForward, requireAckResponse): every event is found through
  the log store / ``/api/logs``.
- Shared-key handshake with the npm client: right key and user served, wrong key refused.
- Redis stopped: no ack, the client's retries succeed after Redis returns, nothing lost (T1).
- TLS, UDP heartbeat and draining shutdown. Bombs: test_forward_bombs.py.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import msgpack
import pytest
from fluent import sender as fluent_sender  # type: ignore[import-untyped]
from starlette.applications import Starlette

from collectors._core.model import LogRecord
from collectors.api.logs import LogApi
from collectors.receivers.forward.config import ForwardUser
from collectors.store.store import TelemetryStore
from tests.helpers.certs import make_pki
from tests.helpers.forward_harness import (
    Harness,
    bodies,
    eventually,
    harness_fixture,  # noqa: F401 - the ``harness`` fixture
    run_node,
)


@pytest.mark.parametrize(
    "nanos", [pytest.param(False, id="int-time"), pytest.param(True, id="eventtime")]
)
async def test_python_fluent_logger(harness: Harness, nanos: bool) -> None:
    receiver = await harness.receiver()
    tag = f"py{int(nanos)}"

    def send() -> None:
        logger = fluent_sender.FluentSender(
            tag, host="127.0.0.1", port=receiver.port, nanosecond_precision=nanos
        )
        for i in range(30):
            assert logger.emit("app", {"message": f"{tag}-{i}", "level": "info", "i": i})
        logger.close()

    started = time.time_ns()
    await asyncio.to_thread(send)
    want = {f"{tag}-{i}" for i in range(30)}
    await eventually(
        lambda: _has(harness, f"{tag}.app", want), "all Python fluent-logger events stored"
    )
    records = await harness.logs(f"{tag}.app")
    assert all(r.severity_text == "info" for r in records)
    times = [r.time_unix_nano for r in records]
    assert all(started - 2 * 10**9 <= t <= time.time_ns() for t in times)
    if nanos:
        assert any(t % 10**9 for t in times)
    else:
        assert all(t % 10**9 == 0 for t in times)


async def _has(harness: Harness, tag: str, want: set[str]) -> bool:
    return bodies(await harness.logs(tag)) >= want


@pytest.mark.parametrize(
    ("mode", "event_time"),
    [
        pytest.param("Message", False, id="message"),
        pytest.param("PackedForward", False, id="packed-forward"),
        pytest.param("CompressedPackedForward", True, id="compressed-packed-forward-eventtime"),
    ],
)
async def test_npm_fluent_logger_with_acks(harness: Harness, mode: str, event_time: bool) -> None:
    receiver = await harness.receiver()
    tag = f"node-{mode.lower()}"
    result = await run_node(
        {"port": receiver.port, "mode": mode, "tag": tag, "count": 60, "eventTime": event_time}
    )
    assert result == {"acked": 60, "errors": 0}
    app = Starlette(routes=LogApi(store=harness.store.logs).routes())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://meshfed"
    ) as client:
        response = await client.get("/api/logs", params={"tag": f"{tag}.e", "limit": 1000})
    assert response.status_code == 200
    assert len(response.json()["logs"]) == 60
    assert bodies(await harness.logs(f"{tag}.e")) == {f"{tag}-{i}" for i in range(60)}


@pytest.mark.parametrize(
    ("security", "ok"),
    [
        pytest.param({"sharedKey": "s3cret"}, True, id="right-key"),
        pytest.param({"sharedKey": "wrong"}, False, id="wrong-key"),
        pytest.param(
            {"sharedKey": "s3cret", "username": "alice", "password": "pw"}, True, id="right-user"
        ),
        pytest.param(
            {"sharedKey": "s3cret", "username": "alice", "password": "no"}, False, id="wrong-user"
        ),
    ],
)
async def test_shared_key_handshake(harness: Harness, security: dict[str, str], ok: bool) -> None:
    users = (ForwardUser("alice", "pw"),) if "username" in security else ()
    receiver = await harness.receiver(shared_key="s3cret", users=users)
    tag = "secure"
    plan = {"port": receiver.port, "mode": "Message", "tag": tag, "count": 5, **security}
    result = await run_node({**plan, "deadlineMs": 20000 if ok else 3000})
    if ok:
        assert result["acked"] == 5
        assert bodies(await harness.logs(f"{tag}.e")) == {f"{tag}-{i}" for i in range(5)}
    else:
        assert result["acked"] == 0
        assert harness.rejected("unauthorized") >= 1
        assert await harness.logs(f"{tag}.e") == []
        assert harness.stored() == 0


async def test_no_ack_while_redis_is_down_and_retries_succeed(harness: Harness) -> None:
    receiver = await harness.receiver()
    embedded = harness.store.connection.embedded
    assert embedded is not None
    await embedded.stop()
    plan = {
        "port": receiver.port,
        "mode": "PackedForward",
        "tag": "outage",
        "count": 40,
        "ackTimeoutMs": 1000,
        "retryDelayMs": 300,
        "deadlineMs": 45000,
    }
    driver = asyncio.ensure_future(run_node(plan))

    async def refused() -> bool:
        return harness.rejected("store_unavailable") >= 2

    await eventually(refused, "writes refused while Redis is down")
    assert harness.stored() == 0 and not driver.done()
    await embedded.start()
    result = await driver
    assert result["acked"] == 40 and result["errors"] >= 1
    stored = await harness.logs("outage.e")  # by tag alone: the stream registry has it
    assert bodies(stored) == {f"outage-{i}" for i in range(40)}


async def test_udp_heartbeat_and_tcp_nil(harness: Harness) -> None:
    receiver = await harness.receiver()

    def probe() -> tuple[bytes, Any]:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.settimeout(5)
            udp.sendto(b"\0", ("127.0.0.1", receiver.port))
            reply = udp.recvfrom(16)[0]
        with socket.create_connection(("127.0.0.1", receiver.port), timeout=10) as conn:
            conn.sendall(b"\xc0" + msgpack.packb(["hb", 0, {"message": "m"}, {"chunk": "k"}]))
            return reply, msgpack.unpackb(conn.recv(100))

    assert await asyncio.to_thread(probe) == (b"\0", {"ack": "k"})


async def test_tls(harness: Harness, tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    receiver = await harness.receiver(tls_cert_file=pki.server_cert, tls_key_file=pki.server_key)

    def send() -> Any:
        context = ssl.create_default_context(cafile=str(pki.ca))
        with (
            socket.create_connection(("127.0.0.1", receiver.port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as conn,
        ):
            conn.sendall(msgpack.packb(["tls", 0, {"message": "secret"}, {"chunk": "t"}]))
            return msgpack.unpackb(conn.recv(100))

    assert await asyncio.to_thread(send) == {"ack": "t"}
    assert bodies(await harness.logs("tls")) == {"secret"}


class _GatedSink:
    """Holds every write until ``gate`` is set, then writes to the store."""

    def __init__(self, store: TelemetryStore) -> None:
        self.store = store
        self.gate = asyncio.Event()
        self.entered = asyncio.Event()

    async def write_logs(self, records: Sequence[LogRecord]) -> None:
        self.entered.set()
        await self.gate.wait()
        await self.store.write_logs(records)


async def test_shutdown_drains_the_message_being_written(harness: Harness) -> None:
    sink = _GatedSink(harness.store)
    receiver = await harness.receiver(sink=sink)
    reader, writer = await asyncio.open_connection("127.0.0.1", receiver.port)
    idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", receiver.port)
    writer.write(msgpack.packb(["drain", 0, {"message": "inflight"}, {"chunk": "d"}]))
    await writer.drain()
    await asyncio.wait_for(sink.entered.wait(), timeout=10)
    stopping = asyncio.ensure_future(receiver.shutdown())
    await asyncio.sleep(0.1)
    assert not stopping.done()
    sink.gate.set()
    assert msgpack.unpackb(await asyncio.wait_for(reader.read(100), 10)) == {"ack": "d"}
    await asyncio.wait_for(stopping, timeout=10)
    assert await asyncio.wait_for(idle_reader.read(100), 10) == b""
    assert bodies(await harness.logs("drain")) == {"inflight"}
    for w in (writer, idle_writer):
        w.close()

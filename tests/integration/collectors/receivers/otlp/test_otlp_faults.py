"""OTLP receivers under faults: bad gRPC input, the store going down (retryable answers with
a retry delay, nothing acknowledged) and mTLS (a client without a certificate is refused at
the handshake on both transports and nothing it sent is stored)."""

from __future__ import annotations

import os
import signal
import ssl
import uuid
import zlib
from pathlib import Path

import grpc
import httpx
import pytest
from google.rpc.error_details_pb2 import RetryInfo  # type: ignore[import-untyped]
from prometheus_client import CollectorRegistry

from collectors.receivers.otlp.config import OtlpSettings
from collectors.store.config import RedisSettings, StoreSettings
from collectors.store.store import TelemetryStore
from tests.helpers.certs import make_pki
from tests.helpers.otlp_harness import (
    LIMIT,
    PB,
    SETTINGS,
    Running,
    grpc_export,
    post,
    running_fixture,  # noqa: F401 - the ``running`` fixture
    start_receivers,
    trace_request,
)
from tests.helpers.rss import PeakRss

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_mtls_refuses_clients_without_a_certificate(running: Running, tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    settings = OtlpSettings(
        grpc_listen="127.0.0.1:0",
        http_listen="127.0.0.1:0",
        tls_cert_file=pki.server_cert,
        tls_key_file=pki.server_key,
        tls_client_ca_file=pki.ca,
    )
    registry = CollectorRegistry()
    grpc_rx, http_rx = await start_receivers(running.store, settings, registry)
    name = f"mtls-{uuid.uuid4().hex[:6]}"
    with_cert = trace_request([b"\x07" * 8], name)
    without_cert = trace_request([b"\x08" * 8], name)
    try:
        ca = pki.ca.read_bytes()
        good = grpc.ssl_channel_credentials(
            ca, pki.client_key.read_bytes(), pki.client_cert.read_bytes()
        )
        bare = grpc.ssl_channel_credentials(ca)
        assert isinstance(
            await grpc_export(grpc_rx.port, with_cert.SerializeToString(), credentials=good),
            bytes,
        )
        error = await grpc_export(grpc_rx.port, without_cert.SerializeToString(), credentials=bare)
        assert isinstance(error, grpc.aio.AioRpcError)
        assert error.code() == grpc.StatusCode.UNAVAILABLE  # the handshake failed

        url = f"https://127.0.0.1:{http_rx.port}/v1/traces"
        body = without_cert.SerializeToString()
        bare_tls = ssl.create_default_context(cafile=str(pki.ca))
        async with httpx.AsyncClient(verify=bare_tls) as client:
            with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
                await client.post(url, content=body, headers=PB)
        client_tls = ssl.create_default_context(cafile=str(pki.ca))
        client_tls.load_cert_chain(str(pki.client_cert), str(pki.client_key))
        async with httpx.AsyncClient(verify=client_tls) as client:
            response = await client.post(url, content=with_cert.SerializeToString(), headers=PB)
        assert response.status_code == 200
    finally:
        await http_rx.shutdown()
        await grpc_rx.shutdown()
    stored = registry.get_sample_value(
        "meshfed_receiver_stored_total", {"receiver": "otlp", "signal": "spans"}
    )
    assert stored == 2  # one over gRPC, one over HTTP: both with a certificate
    refused = without_cert.resource_spans[0].scope_spans[0].spans[0].trace_id.hex()
    assert (await running.query.get(f"/api/traces/{refused}")).status_code == 404


@pytest.mark.parametrize(
    ("size_or_body", "code", "reason"),
    [
        pytest.param(
            b"\xff\xff\xff", grpc.StatusCode.INVALID_ARGUMENT, "bad_request", id="garbage"
        ),
        pytest.param(LIMIT + 10, grpc.StatusCode.RESOURCE_EXHAUSTED, "too_large", id="oversized"),
        pytest.param(3 * LIMIT, grpc.StatusCode.RESOURCE_EXHAUSTED, None, id="over-grpc-cap"),
    ],
)
async def test_grpc_bad_input(
    running: Running, size_or_body: bytes | int, code: grpc.StatusCode, reason: str | None
) -> None:
    if isinstance(size_or_body, int):  # a valid message padded with one big span name
        body = trace_request([b"\x04" * 8], "x" * size_or_body).SerializeToString()
    else:
        body = size_or_body
    before = running.count("meshfed_receiver_rejected_total", reason=reason or "too_large")
    error = await grpc_export(running.grpc_port, body)
    assert isinstance(error, grpc.aio.AioRpcError)
    assert error.code() == code
    counted = running.count("meshfed_receiver_rejected_total", reason=reason or "too_large")
    assert counted == before + (1 if reason else 0)
    ok = await grpc_export(
        running.grpc_port, trace_request([b"\x05" * 8], "ok").SerializeToString()
    )
    assert isinstance(ok, bytes)


async def test_store_down_gives_retryable_answers(tmp_path: Path) -> None:
    """Redis killed: gRPC UNAVAILABLE with RetryInfo, HTTP 503 with Retry-After, nothing acked."""
    settings = StoreSettings(
        redis=RedisSettings(
            url=None, data_dir=tmp_path / "redis", connect_timeout_s=1, command_timeout_s=1
        )
    )
    store = TelemetryStore(settings=settings)
    await store.start()
    registry = CollectorRegistry()
    grpc_rx, http_rx = await start_receivers(store, SETTINGS, registry)
    try:
        assert store.connection.embedded is not None
        pid = store.connection.embedded.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        body = trace_request([b"\x06" * 8], "down").SerializeToString()

        error = await grpc_export(grpc_rx.port, body)
        assert isinstance(error, grpc.aio.AioRpcError)
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        trailers = dict(error.trailing_metadata() or ())
        retry = RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"])
        assert retry.retry_delay.seconds == SETTINGS.retry_after_s
        assert "grpc-status-details-bin" in trailers

        async with httpx.AsyncClient() as client:
            response = await client.post(
                f"http://127.0.0.1:{http_rx.port}/v1/traces", content=body, headers=PB
            )
        assert response.status_code == 503
        assert response.headers["retry-after"] == str(SETTINGS.retry_after_s)
        stored = registry.get_sample_value(
            "meshfed_receiver_stored_total", {"receiver": "otlp", "signal": "spans"}
        )
        assert not stored
        rejected = registry.get_sample_value(
            "meshfed_receiver_rejected_total", {"receiver": "otlp", "reason": "store_unavailable"}
        )
        assert rejected == 2
    finally:
        await http_rx.shutdown()
        await grpc_rx.shutdown()
        await store.shutdown()


def _gzip_bomb_gib() -> bytes:
    """1 GiB of zeros declared by 16 gzip members of 64 MiB each (~1 MiB on the wire)."""
    deflater = zlib.compressobj(9, zlib.DEFLATED, 31)
    member = b"".join(deflater.compress(b"\0" * (4 * 1024 * 1024)) for _ in range(16))
    return (member + deflater.flush()) * 16


async def test_http_gzip_bomb_is_refused_within_the_memory_bound(running: Running) -> None:
    """S1: a body declaring 1 GiB is refused (413) before it is inflated; RSS +<= 64 MiB;
    the receiver keeps serving."""
    bomb = _gzip_bomb_gib()
    peak = PeakRss()
    for _ in range(3):
        response = await post(running, bomb, {**PB, "Content-Encoding": "gzip"})
        assert response.status_code == 413, response.text
    assert peak.growth() <= 64
    ok = await post(running, trace_request([b"\x04" * 8], "after-bomb").SerializeToString(), PB)
    assert ok.status_code == 200

"""The status API's authentication against real gRPC clients: bearer token, TLS, mutual TLS.

Every FederationService RPC and reflection without the token (or with a wrong one) ends
UNAUTHENTICATED and carries nothing of the registry; health stays open for probes; TLS and
mutual TLS are refused at the handshake without the right CA or client certificate; a
rotated token file takes effect without a restart; ``meshfed status`` passes the token and
the TLS material.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from federator.api._generated.meshfed.v1 import federation_pb2 as pb
from federator.api._generated.meshfed.v1 import federation_pb2_grpc as pb_grpc
from federator.api.server import ApiServer
from federator.core.config_security import ApiSecuritySettings
from tests.helpers.certs import Pki, make_pki
from tests.helpers.federator_api_harness import SETTINGS
from tests.helpers.federator_world import HOST_SUFFIX, populated_registry

pytestmark = pytest.mark.timeout(60)

TOKEN = "s3cr3t-token-for-tests"


@dataclass
class Secured:
    server: ApiServer
    address: str
    pki: Pki
    token_file: Path


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    return path


async def _start(security: ApiSecuritySettings, pki: Pki, token_file: Path) -> Secured:
    registry = populated_registry()
    registry.set_ready(True)
    server = ApiServer(
        status=registry,
        host_suffix=HOST_SUFFIX,
        listen="127.0.0.1:0",
        settings=SETTINGS,
        security=security,
    )
    await server.start()
    return Secured(server, f"127.0.0.1:{server.port}", pki, token_file)


@pytest.fixture
async def token_only(pki: Pki, token_file: Path) -> AsyncIterator[Secured]:
    secured = await _start(ApiSecuritySettings(token_file=token_file), pki, token_file)
    yield secured
    await secured.server.shutdown()


@pytest.fixture
async def mtls(pki: Pki, token_file: Path) -> AsyncIterator[Secured]:
    security = ApiSecuritySettings(
        cert_file=pki.server_cert,
        key_file=pki.server_key,
        client_ca_file=pki.ca,
        token_file=token_file,
    )
    secured = await _start(security, pki, token_file)
    yield secured
    await secured.server.shutdown()


@pytest.fixture
async def tls(pki: Pki, token_file: Path) -> AsyncIterator[Secured]:
    security = ApiSecuritySettings(cert_file=pki.server_cert, key_file=pki.server_key)
    secured = await _start(security, pki, token_file)
    yield secured
    await secured.server.shutdown()


def _bearer(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


async def _call_all(stub: Any, metadata: list[tuple[str, str]]) -> list[Any]:
    """Every FederationService RPC once; the first message of WatchEvents."""
    key = pb.ServiceKey(namespace="default", name="reviews")
    unary = [
        stub.GetStatus(pb.GetStatusRequest(), metadata=metadata, timeout=5),
        stub.ListClusters(pb.ListClustersRequest(), metadata=metadata, timeout=5),
        stub.ListServices(pb.ListServicesRequest(), metadata=metadata, timeout=5),
        stub.GetService(pb.GetServiceRequest(key=key), metadata=metadata, timeout=5),
        stub.Plan(pb.PlanRequest(), metadata=metadata, timeout=5),
    ]
    results: list[Any] = []
    for call in unary:
        try:
            results.append(await call)
        except grpc.aio.AioRpcError as error:
            results.append(error)
    stream = stub.WatchEvents(pb.WatchEventsRequest(), metadata=metadata, timeout=2)
    try:
        results.append(await stream.read())
    except grpc.aio.AioRpcError as error:
        results.append(error)
    return results


@pytest.mark.parametrize(
    "metadata",
    [
        pytest.param([], id="no-token"),
        pytest.param(_bearer("wrong"), id="wrong-token"),
        pytest.param(_bearer(TOKEN + "x"), id="token-prefix-matches"),
        pytest.param([("authorization", TOKEN)], id="no-bearer-scheme"),
    ],
)
async def test_refused_without_the_token_and_nothing_leaks(
    token_only: Secured, metadata: list[tuple[str, str]]
) -> None:
    async with grpc.aio.insecure_channel(token_only.address) as channel:
        results = await _call_all(pb_grpc.FederationServiceStub(channel), metadata)
    assert len(results) == 6
    for result in results:
        assert isinstance(result, grpc.aio.AioRpcError), result
        assert result.code() == grpc.StatusCode.UNAUTHENTICATED
        details = result.details() or ""
        assert "bearer token" in details
        for secret in ("reviews", "c1", "c2", "shop", TOKEN):
            assert secret not in details
        assert not result.trailing_metadata() or all(
            TOKEN not in str(v) for _, v in result.trailing_metadata()
        )
    assert token_only.server.token_gate is not None
    assert token_only.server.token_gate.refused >= 6


async def test_the_right_token_is_served(token_only: Secured) -> None:
    async with grpc.aio.insecure_channel(token_only.address) as channel:
        stub = pb_grpc.FederationServiceStub(channel)
        clusters = await stub.ListClusters(
            pb.ListClustersRequest(), metadata=_bearer(TOKEN), timeout=5
        )
    assert [c.name for c in clusters.clusters] == ["c1", "c2", "c3"]


async def test_health_is_open_and_reflection_is_not(token_only: Secured) -> None:
    async with grpc.aio.insecure_channel(token_only.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        answer = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")

        async def list_services(metadata: list[tuple[str, str]]) -> list[str]:
            call = reflection.ServerReflectionInfo(metadata=metadata, timeout=5)
            await call.write(request)
            await call.done_writing()
            response = await call.read()
            return [s.name for s in response.list_services_response.service]

        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await list_services([])
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "meshfed.v1.FederationService" in await list_services(_bearer(TOKEN))


async def test_a_rotated_token_takes_effect_without_restart(token_only: Secured) -> None:
    async with grpc.aio.insecure_channel(token_only.address) as channel:
        stub = pb_grpc.FederationServiceStub(channel)
        request = pb.GetStatusRequest()
        await stub.GetStatus(request, metadata=_bearer(TOKEN), timeout=5)
        rotated = token_only.token_file.with_name("token.new")
        rotated.write_text("the-next-token")
        rotated.replace(token_only.token_file)  # atomic, like a Secret volume's symlink swap
        with pytest.raises(grpc.aio.AioRpcError) as old:
            await stub.GetStatus(request, metadata=_bearer(TOKEN), timeout=5)
        assert old.value.code() == grpc.StatusCode.UNAUTHENTICATED
        status = await stub.GetStatus(request, metadata=_bearer("the-next-token"), timeout=5)
        assert status.ready


def _tls_channel(address: str, ca: Path, cert: Path | None = None, key: Path | None = None) -> Any:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca.read_bytes(),
        private_key=key.read_bytes() if key else None,
        certificate_chain=cert.read_bytes() if cert else None,
    )
    options = [("grpc.ssl_target_name_override", "localhost")]
    return grpc.aio.secure_channel(address, credentials, options=options)


async def _get_status(channel: Any, metadata: list[tuple[str, str]]) -> Any:
    stub = pb_grpc.FederationServiceStub(channel)
    return await stub.GetStatus(pb.GetStatusRequest(), metadata=metadata, timeout=3)


async def test_tls_serves_clients_that_trust_its_ca(tls: Secured) -> None:
    async with _tls_channel(tls.address, tls.pki.ca) as channel:
        assert (await _get_status(channel, [])).ready


@pytest.mark.parametrize(
    "channel",
    [
        pytest.param(lambda s: grpc.aio.insecure_channel(s.address), id="plaintext-client"),
        pytest.param(lambda s: _tls_channel(s.address, s.pki.other_ca), id="unknown-ca"),
    ],
)
async def test_tls_refuses_at_the_handshake(
    tls: Secured, channel: Callable[[Secured], Any]
) -> None:
    async with channel(tls) as opened:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _get_status(opened, [])
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_mtls_needs_a_client_certificate_and_the_token(mtls: Secured) -> None:
    pki = mtls.pki
    async with _tls_channel(mtls.address, pki.ca) as no_cert:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _get_status(no_cert, _bearer(TOKEN))
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    async with _tls_channel(mtls.address, pki.ca, pki.client_cert, pki.client_key) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as no_token:
            await _get_status(channel, [])
        assert no_token.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert (await _get_status(channel, _bearer(TOKEN))).ready


CLI = [sys.executable, "-c", "from meshfed.cli import main; main()", "status"]


async def _status_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    inherited = {k: v for k, v in os.environ.items() if k != "MESHFED_API_TOKEN"}
    environ = {**inherited, "COLUMNS": "200", "NO_COLOR": "1", **(env or {})}
    proc = await asyncio.create_subprocess_exec(
        *CLI, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=environ
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_meshfed_status_over_mtls_with_a_token_file(mtls: Secured) -> None:
    pki = mtls.pki
    tls_args = [
        *("--server", mtls.address, "--ca", str(pki.ca), "--tls-server-name", "localhost"),
        *("--cert", str(pki.client_cert), "--key", str(pki.client_key)),
    ]
    code, out, err = await _status_cli(*tls_args, "--token-file", str(mtls.token_file))
    assert code == 0, err
    assert "federator ready: 3 clusters" in out
    code, out, err = await _status_cli(*tls_args, env={"MESHFED_API_TOKEN": TOKEN})
    assert code == 0, err
    code, out, err = await _status_cli(*tls_args)
    assert code == 1
    assert "UNAUTHENTICATED" in err
    assert "reviews" not in out + err

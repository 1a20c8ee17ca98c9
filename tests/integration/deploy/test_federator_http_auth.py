"""The federator's HTTP port secured (``http:`` in federation.yaml): a real server on loopback.

A bearer token guards ``/metrics`` (401 and a body that names nothing but the missing token,
whatever the path or method); the probes stay open for the kubelet unless ``protectProbes``;
TLS and mutual TLS are the server's own handshake. The token check is the same ``TokenFile``
the gRPC API uses, wired as ``federator.app`` wires it.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from federator.api.auth import TokenFile
from federator.core.config_security import ApiSecuritySettings, HttpSecuritySettings
from federator.health import HealthServer
from federator.metrics import FederatorMetrics
from federator.status import StatusRegistry
from tests.helpers.certs import Pki, make_pki

TOKEN = "s3cret-metrics-token"


def _security(tmp: Path, *, pki: Pki | None = None, mtls: bool = False, probes: bool = False):  # type: ignore[no-untyped-def]
    token = tmp / "token"
    token.write_text(TOKEN + "\n")
    transport = ApiSecuritySettings(
        token_file=token,
        cert_file=pki.server_cert if pki else None,
        key_file=pki.server_key if pki else None,
        client_ca_file=pki.ca if pki and mtls else None,
        section="http",
    )
    settings = HttpSecuritySettings(transport=transport, protect_probes=probes)
    settings.validate()
    return settings


async def _serve(settings: HttpSecuritySettings) -> HealthServer:
    metrics = FederatorMetrics()
    server = HealthServer(
        host="127.0.0.1",
        port=0,
        metrics=metrics,
        status=StatusRegistry(clusters=("c1",)),
        security=settings,
        authorizer=TokenFile(settings.transport.token_file, where="http.tokenFile")  # type: ignore[arg-type]
        if settings.transport.token_file
        else None,
    )
    await server.start()
    return server


@pytest.fixture
async def plain(tmp_path: Path) -> AsyncIterator[str]:
    server = await _serve(_security(tmp_path))
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await server.shutdown()


BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        pytest.param("GET", "/metrics", {}, 401, id="metrics-no-token"),
        pytest.param("GET", "/metrics", {"Authorization": "Bearer nope"}, 401, id="wrong-token"),
        pytest.param("GET", "/metrics", {"Authorization": TOKEN}, 401, id="no-bearer-scheme"),
        pytest.param("POST", "/metrics", {}, 401, id="post-no-token"),
        pytest.param("GET", "/nothing", {}, 401, id="unknown-path-no-token"),
        pytest.param("GET", "/metrics", BEARER, 200, id="metrics-with-token"),
        pytest.param("GET", "/healthz", {}, 200, id="healthz-open"),
        pytest.param("GET", "/readyz", {}, 503, id="readyz-open-not-ready"),
    ],
)  # fmt: skip
async def test_token_guards_metrics_only(
    plain: str, method: str, path: str, headers: dict[str, str], status: int
) -> None:
    async with httpx.AsyncClient(base_url=plain, timeout=5) as client:
        response = await client.request(method, path, headers=headers)
    assert response.status_code == status, response.text
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.text.startswith("unauthorized: missing or wrong bearer token")
        assert "meshfed_" not in response.text and "c1" not in response.text
    if path == "/metrics" and status == 200:
        assert "meshfed_" in response.text


async def test_protect_probes_closes_them_too(tmp_path: Path) -> None:
    server = await _serve(_security(tmp_path, probes=True))
    base = f"http://127.0.0.1:{server.port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:
            assert (await client.get("/healthz")).status_code == 401
            assert (await client.get("/readyz")).status_code == 401
            assert (await client.get("/healthz", headers=BEARER)).status_code == 200
    finally:
        await server.shutdown()


async def test_tls_and_mutual_tls(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    server = await _serve(_security(tmp_path, pki=pki, mtls=True))
    url = f"https://localhost:{server.port}/metrics"
    try:
        trusted = ssl.create_default_context(cafile=str(pki.ca))
        async with httpx.AsyncClient(verify=trusted, timeout=5) as client:  # no client cert
            with pytest.raises(httpx.HTTPError):
                await client.get(url, headers=BEARER)
        trusted.load_cert_chain(pki.client_cert, pki.client_key)
        async with httpx.AsyncClient(verify=trusted, timeout=5) as client:
            assert (await client.get(url)).status_code == 401  # mTLS does not replace the token
            ok = await client.get(url, headers=BEARER)
            assert ok.status_code == 200 and "meshfed_" in ok.text
        async with httpx.AsyncClient(timeout=5) as client:  # plaintext to a TLS port
            with pytest.raises(httpx.HTTPError):
                await client.get(f"http://localhost:{server.port}/metrics", headers=BEARER)
    finally:
        await server.shutdown()


def test_a_token_without_an_authorizer_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"http\.tokenFile"):
        HealthServer(
            host="127.0.0.1",
            port=0,
            metrics=FederatorMetrics(),
            status=StatusRegistry(),
            security=_security(tmp_path),
        )

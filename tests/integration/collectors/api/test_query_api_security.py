"""The collectors' HTTP port behind HTTPS, mutual TLS and a bearer token, with real clients.

``Collector`` runs in the test's event loop over an embedded Redis; clients are httpx, the
``prometheus-api-client`` library (what users script with; it sends custom headers) and a
real Prometheus 2.42 remote-writing with ``authorization.credentials_file`` and
``tls_config``. Without the token every data route answers 401 with ``WWW-Authenticate:
Bearer`` and nothing of the store; the probes stay open.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest
from prometheus_api_client import PrometheusConnect

from collectors.app.collector import Collector
from collectors.app.config import CollectorConfig, HttpSettings
from collectors.store.config import RedisSettings, StoreSettings
from federator.core.config_drills import DrillSettings, StoreTls
from federator.drillctl.access import store_client
from federator.drills.guards import Evaluation, GuardClient
from tests.helpers.certs import Pki, make_pki
from tests.helpers.federator_builders import make_config
from tests.helpers.processes import free_port, stop
from tests.helpers.remote_write import HEADERS as REMOTE_WRITE_HEADERS
from tests.helpers.remote_write import encode_write_request, snappy_block

pytestmark = pytest.mark.timeout(120)

TOKEN = "query-api-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRET_METRIC = "meshfed_secret_series_total"


@dataclass
class Running:
    collector: Collector
    url: str
    pki: Pki
    token_file: Path

    def client(self, *, cert: bool = True) -> httpx.AsyncClient:
        context = ssl.create_default_context(cafile=str(self.pki.ca))
        if cert:
            context.load_cert_chain(self.pki.client_cert, self.pki.client_key)
        return httpx.AsyncClient(base_url=self.url, verify=context, timeout=10)


def _config(tmp_path: Path, pki: Pki, token_file: Path, **http: object) -> CollectorConfig:
    settings = HttpSettings(
        listen="127.0.0.1:0",
        tls_cert_file=pki.server_cert,
        tls_key_file=pki.server_key,
        bearer_token_file=token_file,
    )
    return CollectorConfig(
        http=replace(settings, **http),  # type: ignore[arg-type]
        store=StoreSettings(redis=RedisSettings(data_dir=tmp_path / "redis")),
        statsd=None,
        forward=None,
        otlp=None,
    )


async def _running(config: CollectorConfig, pki: Pki, token_file: Path) -> Running:
    collector = Collector(config=config)
    await collector.start()
    return Running(collector, f"https://localhost:{collector.http_port}", pki, token_file)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    directory = tmp_path / "pki"
    directory.mkdir()
    return make_pki(directory)


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(f"{TOKEN}\n")
    return path


@pytest.fixture
async def secured(tmp_path: Path, pki: Pki, token_file: Path) -> AsyncIterator[Running]:
    running = await _running(_config(tmp_path, pki, token_file), pki, token_file)
    try:
        async with running.client() as client:
            now_ms = int(time.time() * 1000)
            body = encode_write_request([({"__name__": SECRET_METRIC}, [(now_ms, 42.0)])])
            written = await client.post(
                "/api/v1/write",
                content=snappy_block(body),
                headers={**REMOTE_WRITE_HEADERS, **AUTH},
            )
            assert written.status_code == 204, written.text
        yield running
    finally:
        await running.collector.shutdown()


DATA_ROUTES = [
    pytest.param("GET", f"/api/v1/query?query={SECRET_METRIC}", id="query"),
    pytest.param("POST", f"/api/v1/query?query={SECRET_METRIC}", id="query-post"),
    pytest.param("GET", f"/api/v1/series?match[]={SECRET_METRIC}", id="series"),
    pytest.param("GET", "/api/v1/labels", id="labels"),
    pytest.param("GET", "/api/v1/label/__name__/values", id="label-values"),
    pytest.param("GET", "/api/v1/metadata", id="metadata"),
    pytest.param("POST", "/api/v1/write", id="remote-write"),
    pytest.param("GET", "/metrics", id="metrics"),
    pytest.param("GET", "/api/traces", id="traces"),
    pytest.param("GET", "/no/such/route", id="unknown-route"),
]


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-token"),
        pytest.param({"Authorization": "Bearer wrong"}, id="wrong-token"),
        pytest.param({"Authorization": TOKEN}, id="no-bearer-scheme"),
        pytest.param({"Authorization": f"Bearer {TOKEN}x"}, id="longer-token"),
    ],
)
async def test_refused_without_the_token_and_nothing_leaks(
    secured: Running, headers: dict[str, str]
) -> None:
    async with secured.client() as client:
        for param in DATA_ROUTES:
            method, path = param.values
            response = await client.request(str(method), str(path), headers=headers)
            assert response.status_code == 401, (path, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
            assert SECRET_METRIC not in response.text
            assert TOKEN not in response.text
            if str(path).startswith("/api/v1/"):
                assert response.json() == {
                    "status": "error",
                    "errorType": "unauthorized",
                    "error": "missing or wrong bearer token",
                }


@pytest.mark.parametrize(("method", "path"), DATA_ROUTES[:6])
async def test_the_right_token_is_served(secured: Running, method: str, path: str) -> None:
    async with secured.client() as client:
        response = await client.request(method, path, headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "success"


async def test_probes_stay_open(secured: Running) -> None:
    async with secured.client() as client:
        for path in ("/", "/-/healthy", "/-/ready"):
            response = await client.get(path)
            assert response.status_code == 200, (path, response.text)
            assert SECRET_METRIC not in response.text


async def test_public_metrics_opens_only_metrics(
    tmp_path: Path, pki: Pki, token_file: Path
) -> None:
    config = _config(tmp_path, pki, token_file, public_metrics=True)
    running = await _running(config, pki, token_file)
    try:
        async with running.client() as client:
            metrics = await client.get("/metrics")
            assert metrics.status_code == 200
            assert "meshfed_" in metrics.text
            assert (await client.get("/api/v1/labels")).status_code == 401
    finally:
        await running.collector.shutdown()


async def test_mtls_refuses_clients_without_a_certificate(
    tmp_path: Path, pki: Pki, token_file: Path
) -> None:
    config = _config(tmp_path, pki, token_file, tls_client_ca_file=pki.ca)
    running = await _running(config, pki, token_file)
    try:
        async with running.client(cert=False) as client:
            with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
                await client.get("/api/v1/labels", headers=AUTH)
        async with running.client() as client:
            assert (await client.get("/api/v1/labels", headers=AUTH)).status_code == 200
        async with httpx.AsyncClient(timeout=5) as plaintext:
            with pytest.raises(httpx.HTTPError):
                await plaintext.get(f"http://localhost:{running.collector.http_port}/-/ready")
    finally:
        await running.collector.shutdown()


async def test_drill_guards_and_reports_reach_an_mtls_store(
    tmp_path: Path, pki: Pki, token_file: Path
) -> None:
    """The federator's guard client and ``meshfed drill report``'s store client, configured
    with ``drills.tls`` (CA, client certificate, key) and the token, query a store that
    requires mutual TLS; without the client certificate the guard is unknown, not false."""
    running = await _running(
        _config(tmp_path, pki, token_file, tls_client_ca_file=pki.ca), pki, token_file
    )
    tls = StoreTls(ca_file=pki.ca, cert_file=pki.client_cert, key_file=pki.client_key)
    drills = DrillSettings(enabled=True, query_url=running.url, token_file=token_file, tls=tls)
    drills.validate()
    try:
        guards = GuardClient(settings=drills)
        await guards.start()
        try:
            assert await guards.evaluate("vector(1)") == Evaluation(True, 1.0)
        finally:
            await guards.shutdown()
        anonymous = GuardClient(settings=replace(drills, tls=StoreTls(ca_file=pki.ca)))
        await anonymous.start()
        try:
            refused = await anonymous.evaluate("vector(1)")
        finally:
            await anonymous.shutdown()
        assert refused.holds is None and "store unreachable" in refused.message, refused
        config = replace(make_config(), drills=drills)
        with store_client(None, config) as client:  # type: ignore[union-attr]
            rows = await asyncio.to_thread(client.query, "vector(2)", time.time())
        assert [row["value"][1] for row in rows] == ["2"], rows
    finally:
        await running.collector.shutdown()


async def test_mtls_probes_have_their_own_plain_port(
    tmp_path: Path, pki: Pki, token_file: Path
) -> None:
    """With mutual TLS a kubelet (no client certificate) probes ``http.probe_listen``: the
    probes answer there, nothing else does, and the main port still wants a certificate."""
    config = _config(
        tmp_path, pki, token_file, tls_client_ca_file=pki.ca, probe_listen="127.0.0.1:0"
    )
    running = await _running(config, pki, token_file)
    try:
        assert running.collector.probes is not None
        probes = f"http://127.0.0.1:{running.collector.probes.port}"
        async with httpx.AsyncClient(base_url=probes, timeout=5) as kubelet:
            healthy, ready = await kubelet.get("/-/healthy"), await kubelet.get("/-/ready")
            assert (healthy.status_code, healthy.text) == (200, "healthy\n")
            assert ready.status_code == 200
            for path in ("/api/v1/labels", "/metrics", "/api/v1/write"):
                assert (await kubelet.get(path, headers=AUTH)).status_code == 404, path
        async with running.client(cert=False) as client:
            with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
                await client.get("/-/healthy")
    finally:
        await running.collector.shutdown()


async def test_a_rotated_token_takes_effect_without_restart(secured: Running) -> None:
    async with secured.client() as client:
        assert (await client.get("/api/v1/labels", headers=AUTH)).status_code == 200
        fresh = secured.token_file.with_name("token.next")
        fresh.write_text("rotated-token")
        fresh.replace(secured.token_file)
        assert (await client.get("/api/v1/labels", headers=AUTH)).status_code == 401
        rotated = {"Authorization": "Bearer rotated-token"}
        assert (await client.get("/api/v1/labels", headers=rotated)).status_code == 200


async def test_prometheus_api_client_with_the_header(secured: Running) -> None:
    def query() -> list[dict[str, object]]:
        prom = PrometheusConnect(url=secured.url, headers=AUTH)
        prom._session.verify = str(secured.pki.ca)
        prom._session.cert = (str(secured.pki.client_cert), str(secured.pki.client_key))
        return list(prom.custom_query(SECRET_METRIC))

    result = await asyncio.to_thread(query)
    assert [r["value"][1] for r in result] == ["42"]  # type: ignore[index]

    def refused() -> None:
        prom = PrometheusConnect(url=secured.url, headers={})
        prom._session.verify = str(secured.pki.ca)
        prom.custom_query(SECRET_METRIC)

    with pytest.raises(Exception, match="401"):
        await asyncio.to_thread(refused)


async def test_real_prometheus_remote_writes_with_credentials_file(
    secured: Running, tmp_path: Path
) -> None:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is not installed: run `apt-get install -y prometheus`")
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        f"""
global: {{scrape_interval: 1s}}
scrape_configs:
  - job_name: self
    static_configs: [{{targets: ["127.0.0.1:{port}"]}}]
remote_write:
  - url: {secured.url}/api/v1/write
    authorization: {{credentials_file: {secured.token_file}}}
    tls_config: {{ca_file: {secured.pki.ca}, server_name: localhost}}
    queue_config: {{batch_send_deadline: 1s, min_backoff: 100ms, max_backoff: 1s}}
"""
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
        async with secured.client() as client:
            for _ in range(300):  # bounded: 60 s
                r = await client.get(
                    "/api/v1/query", params={"query": 'up{job="self"}'}, headers=AUTH
                )
                if r.status_code == 200 and r.json()["data"]["result"]:
                    break
                await asyncio.sleep(0.2)
            else:
                pytest.fail(
                    f"no sample arrived from Prometheus; its log:\n{log.read_text()[-3000:]}"
                )
    finally:
        stop(proc, timeout_s=30)
    assert "401" not in log.read_text()

"""``meshfed collect`` on each ``--loop``: mutual TLS, remote_write and PromQL alike.

The rest of the suite runs the collector with the default loop (uvloop where installed);
this starts it on uvloop and on the standard loop with mutual TLS on its HTTP port (the
SSL transports are the loops' own), writes samples with a client certificate, reads them
back with PromQL, and checks that a client without a certificate gets no answer.
"""

from __future__ import annotations

import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers.certs import Pki, make_pki
from tests.helpers.processes import free_port, stop
from tests.helpers.remote_write import HEADERS, encode_write_request, snappy_block

pytestmark = pytest.mark.timeout(180)

START_BOUND_S = 60.0
"""Bound on the collector answering after its start on a loaded machine."""


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _client(pki: Pki, *, with_cert: bool) -> httpx.Client:
    context = ssl.create_default_context(cafile=str(pki.ca))
    if with_cert:
        context.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    return httpx.Client(verify=context, timeout=10)


@pytest.fixture(params=[pytest.param("uvloop", id="uvloop"), pytest.param("asyncio", id="asyncio")])
def collector(request: pytest.FixtureRequest, tmp_path: Path, pki: Pki) -> Iterator[str]:
    """The HTTPS base URL of a running ``meshfed collect --loop <param>``."""
    port = free_port()
    log = tmp_path / "collect.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable, "-c", "from meshfed.cli import main; main()", "collect",
                "--loop", request.param, "--http", f"127.0.0.1:{port}",
                "--http-tls-cert", str(pki.server_cert), "--http-tls-key", str(pki.server_key),
                "--http-client-ca", str(pki.ca), "--data-dir", str(tmp_path / "data"),
                "--disable", "statsd", "--disable", "forward", "--disable", "otlp",
                "--log-level", "warning",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"https://localhost:{port}"
    try:
        deadline = time.monotonic() + START_BOUND_S
        with _client(pki, with_cert=True) as client:
            while True:
                assert proc.poll() is None, log.read_text()
                try:
                    if client.get(f"{url}/-/ready").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        yield url
    finally:
        stop(proc, timeout_s=30)
    assert proc.returncode == 0, log.read_text()


def test_samples_written_over_mutual_tls_are_read_back(collector: str, pki: Pki) -> None:
    t0 = (int(time.time()) - 60) * 1000
    samples = [[(t0 + k * 1000, float(i + k)) for k in range(5)] for i in range(50)]
    series = [({"__name__": "loop_check", "series": str(i)}, s) for i, s in enumerate(samples)]
    with _client(pki, with_cert=True) as client:
        answer = client.post(
            f"{collector}/api/v1/write",
            content=snappy_block(encode_write_request(series)),
            headers=HEADERS,
        )
        assert answer.status_code == 204, answer.text
        query = client.get(
            f"{collector}/api/v1/query",
            params={"query": "sum(loop_check)", "time": str((t0 + 4000) / 1000)},
        )
    assert query.status_code == 200, query.text
    [result] = query.json()["data"]["result"]
    assert float(result["value"][1]) == sum(i + 4 for i in range(50))


def test_a_client_without_a_certificate_gets_no_answer(collector: str, pki: Pki) -> None:
    with _client(pki, with_cert=False) as client, pytest.raises(httpx.TransportError):
        client.get(f"{collector}/-/ready")

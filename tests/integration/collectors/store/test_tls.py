"""The store over ``rediss://``: Debian's ``redis-server`` with TLS only, plain and mutual.

A CA, a server certificate (for 127.0.0.1 and localhost) and a client certificate are made
with ``cryptography`` (tests.helpers.certs); two servers listen on TLS ports only
(``--port 0``), one with ``tls-auth-clients no`` and one with ``yes``. The TelemetryStore
connects with ``redis.tls_*`` settings, writes and reads samples, spans and logs; clients that
cannot complete the handshake (unknown CA, no client certificate) are refused at ``start()`` with a
``ConfigError`` naming the settings to fix: retrying never cures a wrong certificate.
"""

from __future__ import annotations

import contextlib
import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from collectors._core.errors import ConfigError
from collectors._core.model import LogRecord, Sample, Severity, Span, SpanId, TraceId
from collectors.promql.source import LabelMatcher, MatchType
from collectors.store.config import RedisSettings, StoreSettings
from collectors.store.logs import LogQuery
from collectors.store.store import TelemetryStore
from tests.helpers.certs import Pki, make_pki
from tests.helpers.processes import free_port, stop

_START_TIMEOUT_S = 20.0
S = 1_000_000_000
TRACE = TraceId("4bf92f3577b34da6a3ce929d0e0e4736")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(
        tmp_path_factory.mktemp("pki"), server_name="redis-server", client_name="meshfed-store"
    )


def _tls_ping(port: int, pki: Pki) -> bool:
    client = redis.Redis(
        host="127.0.0.1",
        port=port,
        ssl=True,
        ssl_ca_certs=str(pki.ca),
        ssl_certfile=str(pki.client_cert),
        ssl_keyfile=str(pki.client_key),
        socket_timeout=1,
        socket_connect_timeout=1,
    )
    try:
        return bool(client.ping())
    finally:
        client.close()


@contextlib.contextmanager
def _tls_redis(pki: Pki, workdir: Path, *, auth_clients: bool) -> Iterator[int]:
    """A TLS-only redis-server (``--port 0``) on a free loopback port; yields the port."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("Debian redis-server missing: apt-get install -y redis-server")
    port = free_port()
    options = {
        "port": "0",
        "tls-port": str(port),
        "bind": "127.0.0.1",
        "tls-cert-file": str(pki.server_cert),
        "tls-key-file": str(pki.server_key),
        "tls-ca-cert-file": str(pki.ca),
        "tls-auth-clients": "yes" if auth_clients else "no",
        "save": "",
        "appendonly": "no",
        "dir": str(workdir),
        "logfile": "redis.log",
    }
    proc = subprocess.Popen(
        [binary, *(arg for name, value in options.items() for arg in (f"--{name}", value))],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                log = workdir / "redis.log"
                tail = log.read_text()[-2000:] if log.exists() else ""
                pytest.fail(f"redis-server exited with {proc.returncode}: {tail}")
            with contextlib.suppress(redis.ConnectionError, OSError):
                if _tls_ping(port, pki):
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"TLS redis-server did not answer within {_START_TIMEOUT_S} s")
            time.sleep(0.1)
        yield port
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def tls_port(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """``tls-auth-clients no``: the server proves who it is; clients need no certificate."""
    with _tls_redis(pki, tmp_path_factory.mktemp("redis-tls"), auth_clients=False) as port:
        yield port


@pytest.fixture(scope="module")
def mtls_port(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """``tls-auth-clients yes``: mutual TLS, clients must present a certificate of the CA."""
    with _tls_redis(pki, tmp_path_factory.mktemp("redis-mtls"), auth_clients=True) as port:
        yield port


def _settings(port: int, **tls: Any) -> StoreSettings:
    return StoreSettings(redis=RedisSettings(url=f"rediss://127.0.0.1:{port}", **tls))


def _spans(t0: int) -> list[Span]:
    resource = {"service.name": "checkout", "cluster": "east"}
    return [
        Span(
            TRACE, SpanId("00f067aa0ba902b7"), "POST /cart", t0, t0 + 5_000_000, resource=resource
        ),
        Span(
            TRACE,
            SpanId("b7ad6b7169203331"),
            "SELECT carts",
            t0 + 1_000_000,
            t0 + 2_000_000,
            parent_span_id=SpanId("00f067aa0ba902b7"),
            resource=resource,
        ),
    ]


@pytest.mark.parametrize(
    ("server", "client_cert"),
    [
        pytest.param("tls_port", False, id="server-auth"),
        pytest.param("mtls_port", True, id="mutual-tls"),
    ],
)
async def test_round_trip_over_tls(
    request: pytest.FixtureRequest, pki: Pki, server: str, client_cert: bool
) -> None:
    port: int = request.getfixturevalue(server)
    cert = {"tls_cert_file": pki.client_cert, "tls_key_file": pki.client_key}
    store = TelemetryStore(
        settings=_settings(port, tls_ca_file=pki.ca, **(cert if client_cert else {}))
    )
    await store.start()
    try:
        now_ms = int(time.time() * 1000) // 1000 * 1000
        samples = [
            Sample("tls_requests_total", {"job": "api"}, now_ms - 60_000 + i * 15_000, float(i))
            for i in range(4)
        ]
        result = await store.write_samples(samples)
        assert result.accepted == 4, result
        series = await store.metrics.select(
            [LabelMatcher("__name__", MatchType.EQUAL, "tls_requests_total")],
            now_ms - 120_000,
            now_ms,
        )
        assert len(series) == 1
        assert list(series[0].values) == [0.0, 1.0, 2.0, 3.0]

        t0 = now_ms * 1_000_000
        await store.write_spans(_spans(t0))
        trace = await store.traces.get_trace(TRACE)
        assert {s.name for s in trace.spans} == {"POST /cart", "SELECT carts"}

        record = LogRecord(
            time_unix_nano=t0,
            body="paid over TLS",
            tag="app",
            severity_number=Severity.INFO,
            severity_text="INFO",
            resource={"cluster": "east"},
            trace_id=TRACE,
        )
        await store.write_logs([record])
        logs = await store.logs.query(LogQuery(t0 - S, t0 + S, limit=10, cluster="east"))
        assert [r.body for r in logs.records] == ["paid over TLS"]
    finally:
        await store.shutdown()


@pytest.mark.parametrize(
    ("server", "files", "fragment"),
    [
        pytest.param("tls_port", {}, "CERTIFICATE_VERIFY_FAILED", id="system-trust-store"),
        pytest.param(
            "tls_port", {"tls_ca_file": "other_ca"}, "CERTIFICATE_VERIFY_FAILED", id="wrong-ca"
        ),
        pytest.param(
            "mtls_port", {"tls_ca_file": "ca"}, "CERTIFICATE_REQUIRED", id="no-client-certificate"
        ),
    ],
)
async def test_refused_handshake_is_a_config_error(
    request: pytest.FixtureRequest, pki: Pki, server: str, files: dict[str, str], fragment: str
) -> None:
    port: int = request.getfixturevalue(server)
    store = TelemetryStore(
        settings=_settings(port, **{name: getattr(pki, attr) for name, attr in files.items()})
    )
    with pytest.raises(ConfigError) as caught:
        await store.start()
    message = str(caught.value)
    assert fragment in message and "redis.tls_ca_file" in message, message
    assert isinstance(_ssl_cause(caught.value), ssl.SSLError)
    await store.shutdown()


def _ssl_cause(exc: BaseException) -> BaseException | None:
    cause: BaseException | None = exc
    for _ in range(10):
        if cause is None or isinstance(cause, ssl.SSLError):
            return cause
        cause = cause.__cause__ or cause.__context__
    return None


@pytest.mark.parametrize(
    ("url", "fields", "fragment"),
    [
        pytest.param(
            "redis://127.0.0.1:6379", {"tls_ca_file": "ca"}, "needs a TLS redis.url", id="plain-url"
        ),
        pytest.param(None, {"tls_ca_file": "ca"}, "needs a TLS redis.url", id="embedded"),
        pytest.param(
            "rediss://127.0.0.1:6379",
            {"tls_cert_file": "client_cert"},
            "go together",
            id="cert-without-key",
        ),
        pytest.param(
            "rediss+cluster://127.0.0.1:6379",
            {"tls_ca_file": "missing"},
            "no such file",
            id="missing-ca-file",
        ),
    ],
)
def test_tls_settings_are_validated(
    pki: Pki, tmp_path: Path, url: str | None, fields: dict[str, str], fragment: str
) -> None:
    paths: dict[str, Any] = {
        name: tmp_path / "absent.pem" if attr == "missing" else getattr(pki, attr)
        for name, attr in fields.items()
    }
    with pytest.raises(ConfigError, match=fragment):
        RedisSettings(url=url, **paths).validate()


def test_valid_mutual_tls_settings_pass(pki: Pki) -> None:
    RedisSettings(
        url="rediss+cluster://127.0.0.1:6379",
        tls_ca_file=pki.ca,
        tls_cert_file=pki.client_cert,
        tls_key_file=pki.client_key,
    ).validate()

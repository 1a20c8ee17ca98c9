"""remote_write end to end: a real Prometheus 2.42 remote-writes to ``meshfed collect``.

``meshfed collect`` runs as a subprocess (SIGTERM at the end exercises the draining
shutdown) over a Debian ``redis-server`` the test can stop and restart; Prometheus scrapes
itself and meshfed's ``/metrics`` every second and remote-writes with a bearer token.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers.paths import REPO_ROOT
from tests.helpers.processes import free_port, stop, wait_http_ok
from tests.helpers.remote_write import HEADERS as REMOTE_WRITE_HEADERS
from tests.helpers.remote_write import encode_write_request, snappy_block

TOKEN = "s3cret-token"
MAX_BODY = 1 << 20
HEADERS = {**REMOTE_WRITE_HEADERS, "Authorization": f"Bearer {TOKEN}"}


@dataclass
class Setup:
    meshfed: str
    prometheus: str
    meshfed_pid: int
    redis_port: int
    redis_dir: Path
    redis: subprocess.Popen[bytes]


def _start_redis(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("Debian redis-server missing: apt-get install -y redis-server")
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(workdir),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--protected-mode",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while (
        subprocess.run(
            ["redis-cli", "-p", str(port), "ping"], capture_output=True, check=False
        ).stdout.strip()
        != b"PONG"
    ):
        if time.monotonic() > deadline:
            raise RuntimeError("redis-server did not start")
        time.sleep(0.1)
    return proc


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    if shutil.which("prometheus") is None:
        pytest.fail("prometheus missing: apt-get install -y prometheus")
    work = tmp_path_factory.mktemp("remote-write")
    redis_port, http_port, prom_port = free_port(), free_port(), free_port()
    redis_dir = work / "redis"
    redis_dir.mkdir()
    redis = _start_redis(redis_port, redis_dir)
    running: Setup | None = None
    token_file = work / "token"
    token_file.write_text(TOKEN + "\n")
    meshfed_log = work / "meshfed.log"
    meshfed = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from meshfed.cli import main; main()",
            "collect",
            "--http",
            f"127.0.0.1:{http_port}",
            "--redis-url",
            f"redis://127.0.0.1:{redis_port}/0",
            "--cluster",
            "c1",
            "--region",
            "r1",
            "--disable",
            "statsd",
            "--disable",
            "forward",
            "--disable",
            "otlp",
            "--remote-write-token-file",
            str(token_file),
            "--set",
            f"remote_write.max_body_bytes={MAX_BODY}",
            "--set",
            "store.redis.command_timeout_s=2",
            "--set",
            "store.redis.connect_timeout_s=1",
            "--log-level",
            "warning",
        ],
        stdout=meshfed_log.open("wb"),
        stderr=subprocess.STDOUT,
        cwd=REPO_ROOT,
    )
    meshfed_url = f"http://127.0.0.1:{http_port}"
    prom_log = work / "prometheus.log"
    prom_url = f"http://127.0.0.1:{prom_port}"
    config = work / "prometheus.yml"
    config.write_text(
        f"""
global: {{scrape_interval: 1s, evaluation_interval: 5s}}
scrape_configs:
  - job_name: prometheus
    static_configs: [{{targets: ["127.0.0.1:{prom_port}"]}}]
  - job_name: meshfed
    static_configs: [{{targets: ["127.0.0.1:{http_port}"]}}]
remote_write:
  - url: {meshfed_url}/api/v1/write
    authorization: {{credentials_file: {token_file}}}
    queue_config:
      {{batch_send_deadline: 1s, max_samples_per_send: 500, min_backoff: 100ms, max_backoff: 1s}}
    metadata_config: {{send: true, send_interval: 2s}}
"""
    )
    prometheus = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={work / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
            "--log.level=warn",
        ],
        stdout=prom_log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_http_ok(f"{meshfed_url}/-/ready", meshfed, what="meshfed collect", log=meshfed_log)
        wait_http_ok(f"{prom_url}/-/ready", prometheus, what="prometheus", log=prom_log)
        running = Setup(meshfed_url, prom_url, meshfed.pid, redis_port, redis_dir, redis)
        yield running
        meshfed.terminate()
        assert meshfed.wait(timeout=60) == 0, meshfed_log.read_text()[-2000:]
    finally:
        stop(prometheus, timeout_s=30)
        stop(meshfed, timeout_s=30)
        stop(redis, timeout_s=30)
        if running is not None:  # a test may have restarted Redis: stop that one too
            stop(running.redis, timeout_s=30)


def _query_range(base: str, query: str, start: float, end: float) -> dict[str, Any]:
    r = httpx.get(
        f"{base}/api/v1/query_range",
        params={"query": query, "start": start, "end": end, "step": "1"},
        timeout=10,
    )
    r.raise_for_status()
    out = {}
    for series in r.json()["data"]["result"]:
        labels = {k: v for k, v in series["metric"].items() if k not in ("cluster", "region")}
        out[tuple(sorted(labels.items()))] = series["values"]
    return out


def _metric(base: str, name: str, **labels: str) -> float:
    text = httpx.get(f"{base}/metrics", timeout=5).text
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    total = 0.0
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    assert want is not None
    return total


SELECTORS = [
    'up{job="prometheus"}',
    "prometheus_build_info",
    'scrape_samples_scraped{job="prometheus"}',
    'prometheus_target_interval_length_seconds{quantile="0.5"}',
]


def test_selectors_agree_with_prometheus(setup: Setup) -> None:
    deadline = time.monotonic() + 60
    diffs: list[str] = []
    while time.monotonic() < deadline:
        end = time.time() - 5  # remote_write lags the scrape by up to ~2 s
        start = end - 10
        diffs = []
        for q in SELECTORS:
            ours = _query_range(setup.meshfed, q, start, end)
            theirs = _query_range(setup.prometheus, q, start, end)
            if not theirs or ours != theirs:
                diffs.append(f"{q}: meshfed {ours} != prometheus {theirs}")
        if not diffs:
            break
        time.sleep(1)
    assert not diffs, "\n".join(diffs)
    series = httpx.get(f"{setup.meshfed}/api/v1/series", params={"match[]": "up"}).json()
    assert all(s["cluster"] == "c1" and s["region"] == "r1" for s in series["data"])


def test_metadata_is_kept(setup: Setup) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        data = httpx.get(f"{setup.meshfed}/api/v1/metadata").json()["data"]
        entry = data.get("prometheus_http_requests_total")
        if entry:
            assert entry[0]["type"] == "counter"
            return
        time.sleep(0.5)
    pytest.fail("metadata of prometheus_http_requests_total never arrived")


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


GOOD = snappy_block(encode_write_request([({"__name__": "probe_ok", "i": "1"}, [(1, 1.0)])]))


@pytest.mark.parametrize(
    ("body", "headers", "status", "reason"),
    [
        pytest.param(GOOD, {**HEADERS, "Authorization": ""}, 401, "unauthorized", id="no-token"),
        pytest.param(
            GOOD, {**HEADERS, "Authorization": "Bearer wrong"}, 401, "unauthorized", id="bad-token"
        ),
        pytest.param(
            b"\xff\xff\xff\xff\x0f" + b"\x00" * 64, HEADERS, 413, "too_large", id="snappy-bomb-4GiB"
        ),
        pytest.param(b"\x00" * (MAX_BODY + 1), HEADERS, 413, "too_large", id="oversized-body"),
        pytest.param(b"\x05garbage", HEADERS, 400, "bad_data", id="not-snappy"),
        pytest.param(
            snappy_block(encode_write_request([({"job": "x"}, [(1, 1.0)])])),
            HEADERS,
            400,
            "bad_data",
            id="series-without-name",
        ),
        pytest.param(
            GOOD,
            {
                **HEADERS,
                "Content-Type": "application/x-protobuf;proto=io.prometheus.write.v2.Request",
            },
            415,
            "unsupported",
            id="remote-write-2.0",
        ),
    ],
)
def test_bad_requests_get_the_protocol_error_and_are_counted(
    setup: Setup, body: bytes, headers: dict[str, str], status: int, reason: str
) -> None:
    before = _metric(setup.meshfed, "meshfed_receiver_rejected_total", reason=reason)
    r = httpx.post(f"{setup.meshfed}/api/v1/write", content=body, headers=headers, timeout=10)
    assert r.status_code == status, r.text
    assert _metric(setup.meshfed, "meshfed_receiver_rejected_total", reason=reason) == before + 1


def test_bombs_do_not_grow_memory_and_others_are_served(setup: Setup) -> None:
    bomb = b"\xff\xff\xff\xff\x0f" + os.urandom(1024)
    # literal-only snappy declaring 16 MiB - 1 but carrying 1 KiB: fails after the header check
    lying = b"\xff\xff\xff\x07" + b"\xf0\xff\x03" + os.urandom(1024)
    big = b"\x00" * (MAX_BODY + 100)
    rss_before = _rss_mib(setup.meshfed_pid)
    with httpx.Client(timeout=30) as client:
        for i in range(60):
            body = (bomb, lying, big)[i % 3]
            r = client.post(f"{setup.meshfed}/api/v1/write", content=body, headers=HEADERS)
            assert r.status_code in (400, 413), r.status_code
            if i % 10 == 0:
                ok = client.post(f"{setup.meshfed}/api/v1/write", content=GOOD, headers=HEADERS)
                assert ok.status_code in (204, 400), ok.text  # 400: out of order on repeats
    growth = _rss_mib(setup.meshfed_pid) - rss_before
    assert growth <= 64, f"RSS grew by {growth:.1f} MiB"


def test_store_down_answers_503_and_prometheus_catches_up(setup: Setup) -> None:
    url = f"{setup.meshfed}/api/v1/write"
    q = 'up{job="prometheus"}'
    # Prometheus must be sending before the outage (run alone, this test starts before its
    # first scrape), or an outage with nothing scraped would compare two empty answers.
    first_send = time.monotonic() + 30
    while not _query_range(setup.meshfed, q, time.time() - 60, time.time()):
        assert time.monotonic() < first_send, "Prometheus sent nothing in 30 s"
        time.sleep(0.5)
    setup.redis.terminate()
    setup.redis.wait(timeout=30)
    try:
        t = int(time.time() * 1000)
        body = snappy_block(encode_write_request([({"__name__": "while_down"}, [(t, 1.0)])]))
        r = httpx.post(url, content=body, headers=HEADERS, timeout=30)
        assert r.status_code == 503, r.text
        assert r.headers.get("retry-after")
        time.sleep(3)  # Prometheus keeps scraping; its sends fail and are retried
        outage_start, outage_end = time.time() - 3, time.time()
    finally:
        setup.redis = _start_redis(setup.redis_port, setup.redis_dir)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ok = httpx.post(url, content=body, headers=HEADERS, timeout=30)
        if ok.status_code == 204:
            break
        time.sleep(0.5)
    assert ok.status_code == 204, ok.text
    ours: dict[str, Any] = {}
    theirs: dict[str, Any] = {}
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPStatusError):  # reads may 503 while reconnecting
            ours = _query_range(setup.meshfed, q, outage_start, outage_end)
            theirs = _query_range(setup.prometheus, q, outage_start, outage_end)
            if theirs and ours == theirs:
                return
        time.sleep(1)
    pytest.fail(f"samples scraped during the outage are missing: {ours} != {theirs}")

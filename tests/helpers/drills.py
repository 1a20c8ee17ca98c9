"""Drill test helpers: the CRD, a ``meshfed federate`` process with drills on, Drill objects
and what istiod serves for a host's routes (RDS is the judge of every non-drain step)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml

from meshfed.mesh.node import sidecar_node
from meshfed.mesh.xds import XdsError, snapshot
from tests.helpers.federator_harness import get_json, kubectl
from tests.helpers.istio import MESHFED, IstioSandbox
from tests.helpers.processes import free_port, stop, wait_http_ok

CRD = Path(__file__).resolve().parents[2] / "federator" / "drills_crd.yaml"
HOME = "c1"
NAMESPACE = "meshfed-system"


def install_crd(sb: IstioSandbox) -> None:
    kubectl(sb.kubeconfig, HOME, "apply", "-f", str(CRD))
    kubectl(sb.kubeconfig, HOME, "wait", "--for=condition=Established", "crd/drills.meshfed.io")
    kubectl(sb.kubeconfig, HOME, "create", "namespace", NAMESPACE, check=False)


class DrillFederator:
    """``meshfed federate`` with ``drills.enabled`` and c1 as the home cluster."""

    def __init__(self, sb: IstioSandbox, *, drills: dict[str, Any] | None = None) -> None:
        self.sb = sb
        self.http = f"127.0.0.1:{free_port()}"
        doc = yaml.safe_load((sb.directory / "federation.yaml").read_text())
        doc["listen"] = {"http": self.http, "grpc": f"127.0.0.1:{free_port()}"}
        doc["gatewayProbe"] = {"enabled": False}
        doc["drills"] = {"enabled": True, "pollInterval": "500ms", **(drills or {})}
        self.config = sb.directory / "federation-drills.yaml"
        self.config.write_text(yaml.safe_dump(doc))
        self.log = sb.directory / "logs" / "federate-drills.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [MESHFED, "federate", "--config", str(self.config),
                 "--home-kubeconfig", str(self.sb.kubeconfig), "--home-context", HOME],
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_http_ok(f"http://{self.http}/readyz", self.proc, what="meshfed federate", log=self.log)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no rollback by this process."""
        if self.proc is not None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=20)
            self.proc = None

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            stop(proc, timeout_s=20)

    def metrics(self) -> str:
        return httpx.get(f"http://{self.http}/metrics", timeout=5).text


def drill_doc(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "meshfed.io/v1alpha1",
        "kind": "Drill",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec,
    }


def create_drill(
    sb: IstioSandbox, name: str, spec: dict[str, Any]
) -> subprocess.CompletedProcess[str]:
    return kubectl(
        sb.kubeconfig, HOME, "create", "-f", "-", stdin=json.dumps(drill_doc(name, spec)),
        check=False,
    )  # fmt: skip


def delete_drill(sb: IstioSandbox, name: str) -> None:
    kubectl(sb.kubeconfig, HOME, "delete", "drill", name, "-n", NAMESPACE, "--wait=false",
            check=False)  # fmt: skip


def drill_status(sb: IstioSandbox, name: str) -> dict[str, Any]:
    obj = get_json(sb.kubeconfig, HOME, "drill", name, "-n", NAMESPACE)
    return {} if obj is None else dict(obj.get("status") or {})


def wait_status(
    sb: IstioSandbox,
    name: str,
    accept: Callable[[dict[str, Any]], bool],
    *,
    what: str,
    timeout: float = 90.0,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        last = drill_status(sb, name)
        if accept(last):
            return last
        time.sleep(0.5)
    raise AssertionError(f"drill {name}: timed out waiting for {what}; status: {last}")


def terminal(status: dict[str, Any]) -> bool:
    return status.get("phase") in ("Succeeded", "Aborted", "Refused", "Failed")


def events(status: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in status.get("events") or [] if e.get("type") == kind]


def _wire(data: bytes) -> dict[int, list[Any]]:
    """A protobuf message's fields by number (varints as ints, length-delimited as bytes): enough
    to read the fault filter's config, whose type the test's descriptor pool does not have."""
    out: dict[int, list[Any]] = {}
    i = 0

    def varint() -> int:
        nonlocal i
        shift = value = 0
        while True:
            b = data[i]
            i += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return value

    while i < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            out.setdefault(number, []).append(varint())
        elif wire == 2:
            size = varint()
            out.setdefault(number, []).append(data[i : i + size])
            i += size
        elif wire == 5:
            i += 4
        elif wire == 1:
            i += 8
        else:
            break
    return out


def _fault(raw: bytes) -> str:
    """``HTTPFault``: 1 delay (FaultDelay: 3 fixed_delay Duration), 2 abort (2 http_status)."""
    fault = _wire(raw)
    parts = []
    for delay in fault.get(1, []):
        fixed = _wire(_wire(delay).get(3, [b""])[0])
        parts.append(f"delay={fixed.get(1, [0])[0]}s")
    for abort in fault.get(2, []):
        parts.append(f"abort={_wire(abort).get(2, [0])[0]}")
    return ",".join(parts)


def _describe(vh: Any) -> str:
    """A line per route: header matches, destination cluster(s) with weights, fault."""
    lines = []
    for r in vh.routes:
        headers = [f"{h.name}={h.string_match.exact or h.exact_match}" for h in r.match.headers]
        weighted = [f"{c.name}:{c.weight.value}" for c in r.route.weighted_clusters.clusters]
        faults = [
            _fault(any_.value)
            for name, any_ in r.typed_per_filter_config.items()
            if name == "envoy.filters.http.fault"
        ]
        lines.append(
            f"route {r.name} headers[{' '.join(headers)}] cluster={r.route.cluster} "
            f"weighted[{' '.join(weighted)}] fault[{' '.join(faults)}]"
        )
    return "\n".join(lines)


def virtual_host(sb: IstioSandbox, context: str, host: str, port: int) -> str | None:
    """The RDS virtual host istiod serves a sidecar in ``context`` for ``host:port``, one line
    per route (``_describe``)."""
    try:
        snap = snapshot(address=sb.xds(context), node=sidecar_node(sb.identity(context)))
    except XdsError:
        return None
    route = snap.routes.get(str(port))
    return None if route is None else describe_route(route, host, port)


def describe_route(route: Any, host: str, port: int) -> str | None:
    """``host``'s virtual host in an RDS ``RouteConfiguration``, one line per route
    (``_describe``); None when the host has none."""
    for vh in route.virtual_hosts:
        if host in vh.domains or f"{host}:{port}" in vh.domains:
            return _describe(vh)
    return None


def wait_virtual_host(
    sb: IstioSandbox,
    context: str,
    host: str,
    port: int,
    accept: Callable[[str], bool],
    *,
    what: str,
    timeout: float = 60.0,
) -> str:
    """Poll RDS until ``accept`` takes the virtual host's JSON text."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        vh = virtual_host(sb, context, host, port)
        last = str(vh)
        if vh is not None and accept(vh):
            return vh
        time.sleep(0.5)
    raise AssertionError(f"{context}: timed out waiting for {what}; last: {last[:2000]}")


@contextlib.contextmanager
def running_collector(directory: Path) -> Iterator[str]:
    """``meshfed collect`` with embedded Redis on free loopback ports; yields its HTTP address
    (query API and ``/api/v1/write``), the store drill guards are evaluated against."""
    http = f"127.0.0.1:{free_port()}"
    args = [MESHFED, "collect", "--data-dir", str(directory), "--http", http,
            "--statsd", f"127.0.0.1:{free_port()}", "--disable", "pull"]  # fmt: skip
    for flag in ("otlp-http", "otlp-grpc", "forward"):
        args += [f"--{flag}", f"127.0.0.1:{free_port()}"]
    log = directory / "collect.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_http_ok(f"http://{http}/-/ready", proc, what="meshfed collect", log=log, timeout_s=120)
        yield http
    finally:
        stop(proc, timeout_s=20)

"""A real ``meshfed collect`` (embedded Redis) for the load generator's tests, and helpers to
run the generator and read its telemetry back through the store's Prometheus API."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest

from meshfed.loadgen.envoy import virtual_hosts
from meshfed.loadgen.exporters import Endpoints
from meshfed.loadgen.generator import Hop, LoadGenerator, LoadSettings, LoadStats, Place
from meshfed.loadgen.model import VirtualHost, find_virtual_host
from meshfed.mesh.node import sidecar_node
from meshfed.mesh.xds import XdsError, snapshot
from meshfed.sandbox.components import find_istio
from tests.helpers.istio import MESHFED, IstioSandbox, clusterset_host
from tests.helpers.processes import free_port, stop, wait_http_ok


@dataclass(frozen=True, slots=True)
class Collector:
    endpoints: Endpoints

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"query": promql}
        if at is not None:
            params["time"] = at
        r = httpx.get(f"http://{self.endpoints.http}/api/v1/query", params=params, timeout=10)
        r.raise_for_status()
        body = r.json()
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def scalar(self, promql: str, at: float | None = None) -> float:
        result = self.query(promql, at)
        assert len(result) == 1, f"{promql} -> {result}"
        return float(result[0]["value"][1])

    def by(self, label: str, promql: str) -> dict[str, float]:
        return {r["metric"].get(label, ""): float(r["value"][1]) for r in self.query(promql)}


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    """``meshfed collect`` as users run it, on free loopback ports, with embedded Redis."""
    d = tmp_path_factory.mktemp("collect")
    ports = {k: f"127.0.0.1:{free_port()}" for k in ("http", "otlp-http", "otlp-grpc", "forward")}
    statsd = f"127.0.0.1:{free_port()}"
    log = d / "collect.log"
    args = [MESHFED, "collect", "--data-dir", str(d), "--statsd", statsd, "--disable", "pull"]
    for flag, address in ports.items():
        args += [f"--{flag}", address]
    with log.open("ab") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_http_ok(
            f"http://{ports['http']}/-/ready", proc, what="meshfed collect", log=log, timeout_s=120
        )
        yield Collector(Endpoints(ports["http"], ports["otlp-http"], ports["forward"]))
    finally:
        stop(proc, timeout_s=20)


def places(sb: IstioSandbox) -> tuple[Place, ...]:
    return tuple(
        Place(c.name, sb.xds(c.name), c.region, c.zone, c.network) for c in sb.layout.clusters
    )


def settings(
    sb: IstioSandbox, origin: str, services: tuple[str, ...], workload: str, **more: Any
) -> LoadSettings:
    """A bounded, seeded run from ``origin`` calling ``services`` in turn."""
    base = LoadSettings(
        origin=origin,
        places=places(sb),
        chain=tuple(Hop(s, clusterset_host(s)) for s in services),
        source_workload=workload,
        gateways={c.gateway_ip: c.name for c in sb.layout.clusters},
        istio_version=find_istio().version,
    )
    return replace(base, **more)


def run_load(collector: Collector, *runs: LoadSettings) -> list[LoadStats]:
    """Run generators side by side until their bounds; fail on any export error."""

    async def one(s: LoadSettings) -> LoadStats:
        gen = LoadGenerator(s, collector.endpoints)
        await gen.start()
        try:
            return await gen.wait()
        finally:
            await gen.shutdown()

    async def main() -> list[LoadStats]:
        return list(await asyncio.gather(*(one(s) for s in runs)))

    results = asyncio.run(main())
    for stats in results:
        assert not stats.export_errors, stats.export_errors
    return results


def served_host(sb: IstioSandbox, context: str, host: str) -> VirtualHost | None:
    """The virtual host of ``host`` in the port-9080 route table ``context`` serves now."""
    snap = snapshot(address=sb.xds(context), node=sidecar_node(sb.identity(context)))
    rc = snap.routes.get("9080")
    return None if rc is None else find_virtual_host(virtual_hosts(rc), host, 9080)


def wait_routes(
    sb: IstioSandbox, context: str, host: str, accept: Any, *, what: str, timeout: float = 60
) -> VirtualHost:
    deadline = time.monotonic() + timeout
    last: VirtualHost | None = None
    while time.monotonic() < deadline:
        try:
            last = served_host(sb, context, host)
        except XdsError:
            last = None
        if last is not None and accept(last):
            return last
        time.sleep(0.5)
    raise AssertionError(f"{context}'s istiod never served {what}; last: {last!r}")

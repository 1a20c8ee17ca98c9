"""Fixtures of the console's browser tests: one world for this directory, a page per test, and
what the tests share: opening a page, a screenshot, the federator's gRPC API (``stub``) and
waiting until the demo services are federated (``settled``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from federator.api._generated.meshfed.v1 import federation_pb2 as pb
from federator.api._generated.meshfed.v1 import federation_pb2_grpc as pb_grpc
from tests.helpers.federator_harness import app_docs, apply, kubectl, wait_for
from tests.helpers.sandbox import RunningSandbox
from tests.integration.console import browser, known_telemetry, world

NAMESPACE = "console-demo"
SCREENSHOTS = os.environ.get("MESHFED_CONSOLE_SCREENSHOTS", "")
"""A directory to also save the tests' screenshots in (docs/images when refreshing docs)."""


@dataclass
class World:
    sandbox: RunningSandbox
    federator: world.Federator
    collector: world.Collector
    url: str
    trace_ids: list[str]
    work: Path


@pytest.fixture(scope="package")
def console_world(
    sandbox: RunningSandbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    work = tmp_path_factory.mktemp("console")
    kc = sandbox.kubeconfig
    clusters = ["c1", "c2", "c3"]
    world.namespace_everywhere(kc, NAMESPACE, clusters)
    apply(kc, "c1", app_docs("reviews", NAMESPACE, replicas=2))
    apply(kc, "c2", app_docs("reviews", NAMESPACE, replicas=1))
    apply(kc, "c3", app_docs("ratings", NAMESPACE, replicas=1))
    started: list[Any] = []
    with world.gateways():
        try:
            federator = world.start_federator(sandbox.directory, kc, work)
            started.append(federator.proc)
            collector = world.start_collector(work)
            started.append(collector.proc)
            console, url = world.start_console(federator, collector, work)
            started.append(console)
            ids = known_telemetry.write_traces_and_logs(collector, 12)
            with known_telemetry.metrics_flowing(collector, NAMESPACE):
                yield World(sandbox, federator, collector, url, ids, work)
        finally:
            for proc in reversed(started):
                proc.stop()
            for c in clusters:
                kubectl(kc, c, "delete", "namespace", NAMESPACE, "--wait=false", check=False)


@pytest.fixture(scope="package")
def chromium() -> Iterator[Any]:
    with browser.browser() as b:
        yield b


@pytest.fixture
def page(chromium: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    try:
        yield pg
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def shoot(page: Any, name: str, tmp: Path) -> None:
    """Save a screenshot in the test's directory (and in $MESHFED_CONSOLE_SCREENSHOTS)."""
    page.screenshot(path=str(tmp / f"console-{name}.png"), full_page=False)
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / f"console-{name}.png"), full_page=False)


def open_page(page: Any, url: str, hash_: str, *, timeout_s: float = 30) -> None:
    """Load ``url#hash_`` fresh and wait until the page rendered its data (or an error)."""
    page.goto("about:blank")  # a same-URL goto would not reload the page
    page.goto(f"{url}/#{hash_}")
    page.wait_for_function(
        "() => document.getElementById('main').dataset.loaded", timeout=timeout_s * 1000
    )


def stub(w: World) -> Any:
    return pb_grpc.FederationServiceStub(grpc.insecure_channel(w.federator.grpc))


def settled(w: World) -> pb.ListServicesResponse:
    """Wait until the federator sees every cluster and both demo services with ready pods."""

    def probe() -> pb.ListServicesResponse | None:
        s = stub(w)
        status = s.GetStatus(pb.GetStatusRequest(), timeout=5)
        if not all(c.synced and c.reachable for c in status.clusters):
            return None
        listed = s.ListServices(pb.ListServicesRequest(namespace=NAMESPACE), timeout=5)
        ready = {
            (x.key.name, e.cluster): e.ready_endpoints for x in listed.services for e in x.exporters
        }
        want = {("reviews", "c1"): 2, ("reviews", "c2"): 1, ("ratings", "c3"): 1}
        # Other tests add services of their own (details, propagated): only the demo's count.
        return listed if all(ready.get(k) == v for k, v in want.items()) else None

    return wait_for("the demo services exported with ready endpoints", probe, timeout=120)


__all__ = ["NAMESPACE", "World", "open_page", "settled", "shoot", "stub", "wait_for"]

"""The console over a real mesh: what each istiod serves on the Service page, and a drill's
live timeline and report on the Drills page.

A 3-cluster sandbox with an istiod per cluster (built from source), the Drill CRD in the home
cluster (c1), ``meshfed federate`` with drills on, ``meshfed collect`` as the store, and
``meshfed console --sandbox DIR`` in Debian's Chromium. The page is compared with istiod's own
xDS answer (the test's xDS client) and with the Drill object the controller wrote.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from federator.core.drills.summary import read_drill
from federator.drillctl.report import Telemetry, build_report
from tests.helpers.drills import (
    HOME,
    NAMESPACE,
    DrillFederator,
    create_drill,
    install_crd,
    running_collector,
    terminal,
    wait_status,
)
from tests.helpers.federator_harness import app_docs, apply, get_json
from tests.helpers.istio import (
    IstioSandbox,
    clusterset_host,
    gateways,
    outbound,
    running_istio_sandbox,
    served,
    wait_served,
)
from tests.helpers.processes import free_port, stop, wait_http_ok
from tests.integration.console import world
from tests.integration.console.conftest import open_page, shoot

pytestmark = pytest.mark.integration

BASE_PORT = int(os.environ.get("MESHFED_TEST_ISTIO_BASE_PORT", "25000")) + 300
SERVICE = "reviews"
PORT = 9080
HOST = clusterset_host(SERVICE)
BOTH = {"127.0.1.1": 2, "127.0.2.1": 1}
"""What c3's istiod serves for reviews: c1's and c2's gateways, weighted by pod count."""


@dataclass
class Mesh:
    sb: IstioSandbox
    federator: DrillFederator
    url: str


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    work = tmp_path_factory.mktemp("console-mesh")
    with running_istio_sandbox(
        work / "sandbox", clusters=3, base_port=BASE_PORT,
        why="The console's istiod and drill pages are tested against it.",
    ) as (sb, layout):  # fmt: skip
        istio = IstioSandbox(sb, layout)
        install_crd(istio)
        apply(istio.kubeconfig, "c1", app_docs(SERVICE, replicas=2))
        apply(istio.kubeconfig, "c2", app_docs(SERVICE, replicas=1))
        (work / "store").mkdir()
        with running_collector(work / "store") as store:
            fed = DrillFederator(istio, drills={"queryUrl": f"http://{store}"})
            fed.start()
            console: subprocess.Popen[bytes] | None = None
            try:
                grpc = yaml.safe_load(fed.config.read_text())["listen"]["grpc"]
                port = free_port()
                log = work / "console.log"
                with log.open("ab") as out:
                    console = subprocess.Popen(
                        [world.MESHFED, "console", "--port", str(port), "--federator", grpc,
                         "--store", f"http://{store}", "--sandbox", str(istio.directory),
                         "--federation-config", str(fed.config)],
                        stdout=out, stderr=subprocess.STDOUT,
                    )  # fmt: skip
                url = f"http://127.0.0.1:{port}"
                wait_http_ok(f"{url}/", console, what="console", log=log, timeout_s=60)
                wait_served(
                    istio, "c3", outbound(HOST, PORT), lambda v: gateways(v) == BOTH,
                    what="reviews federated into c3", timeout=120,
                )  # fmt: skip
                yield Mesh(istio, fed, url)
            finally:
                if console is not None:
                    stop(console, timeout_s=20)
                fed.stop()


def test_service_page_shows_what_each_istiod_serves(mesh: Mesh, page: Any, tmp_path: Path) -> None:
    open_page(page, mesh.url, f"/service/default/{SERVICE}", timeout_s=60)
    assert page.get_attribute("#xds", "data-state") == "shown"
    for context in ("c1", "c2", "c3"):
        truth = served(mesh.sb, context, outbound(HOST, PORT))
        assert truth is not None, context
        box = page.locator(
            f"section[data-istiod={context}] .xds-cluster[data-outbound='{outbound(HOST, PORT)}']"
        )
        assert box.count() == 1, context
        rows = box.locator("tr[data-endpoint]")
        shown = {
            r.get_attribute("data-endpoint"): int(r.locator("td").nth(1).inner_text())
            for r in rows.all()
        }
        assert shown == {f"{e.address}:{e.port}": e.weight for e in truth.endpoints}, context
        assert f"TLS {truth.tls.mode}" in box.inner_text()
    # c3 imports only: both remote gateways, weighted 2:1 by ready pods.
    c3 = page.locator(f"section[data-istiod=c3] [data-outbound='{outbound(HOST, PORT)}']")
    gw = {
        r.get_attribute("data-endpoint"): r.locator("td").nth(1).inner_text()
        for r in c3.locator("tr[data-endpoint]").all()
    }
    assert gw == {"127.0.1.1:15443": "2", "127.0.2.1:15443": "1"}
    page.locator("#xds").scroll_into_view_if_needed()
    shoot(page, "service-xds", tmp_path)


def _drill_object(sb: IstioSandbox, name: str) -> dict[str, Any]:
    obj = get_json(sb.kubeconfig, HOME, "drill", name, "-n", NAMESPACE)
    assert obj is not None, name
    return dict(obj)


def test_drill_timeline_updates_live_and_the_report_opens(
    mesh: Mesh, page: Any, tmp_path: Path
) -> None:
    name = "console-abort"
    spec = {
        "services": [{"namespace": "default", "name": SERVICE}],
        "ttl": "2m",
        "hypothesis": {"description": "reviews keeps answering under a 503 abort"},
        "steps": [{"name": "abort-half", "duration": "8s",
                   "abort": {"percentage": 50, "httpStatus": 503}}],
    }  # fmt: skip
    out = create_drill(mesh.sb, name, spec)
    assert out.returncode == 0, out.stderr
    open_page(page, mesh.url, f"/drill/{NAMESPACE}/{name}")
    page.evaluate("window.__marker = 1")  # gone if the page reloaded
    first = page.locator("#dr-timeline tbody tr[data-event]").count()
    # The controller runs the drill; the page follows WatchDrills without a reload.
    status = wait_status(mesh.sb, name, terminal, what="a terminal phase", timeout=120)
    page.wait_for_function(
        f"() => document.getElementById('dr-phase')?.innerText.includes({status['phase']!r})",
        timeout=30_000,
    )
    assert page.evaluate("window.__marker") == 1
    # Exactly the timeline `meshfed drill report` builds from the Drill object.
    read = read_drill(_drill_object(mesh.sb, name))
    report = build_report(
        obj=read.obj, spec=read.spec, journal=read.journal, telemetry=Telemetry(), now=time.time()
    )

    def rows_match() -> bool:
        events = page.locator("#dr-timeline tbody tr[data-event]")
        return events.count() == len(report.timeline)

    deadline = time.monotonic() + 20
    while not rows_match() and time.monotonic() < deadline:
        time.sleep(0.5)
    rows = page.locator("#dr-timeline tbody tr[data-event]")
    assert rows.count() == len(report.timeline) > first
    kinds = rows.evaluate_all("rs => rs.map(r => r.dataset.event)")
    assert kinds == [e.kind for e in report.timeline]
    assert report.verdict in page.inner_text("#dr-verdict")
    steps = page.locator("tr[data-step]")
    assert steps.count() == 1 and "abort-half" in steps.first.inner_text()
    shoot(page, "drill", tmp_path)
    # The drill list links to it, and the full report is the CLI's HTML report.
    open_page(page, mesh.url, "/drills")
    assert page.locator(f"tr[data-drill='{NAMESPACE}/{name}'] a").count() == 1
    href = page.get_attribute(f"tr[data-drill='{NAMESPACE}/{name}'] a", "href")
    assert href == f"#/drill/{NAMESPACE}/{name}"
    html = httpx.get(f"{mesh.url}/report/drill/{NAMESPACE}/{name}", timeout=60)
    assert html.status_code == 200, html.text[:500]
    assert name in html.text and report.verdict in html.text
    assert "abort-half" in html.text


@pytest.mark.parametrize(
    "hash_",
    [
        pytest.param(f"/service/default/{SERVICE}", id="service-with-xds"),
        pytest.param(f"/drill/{NAMESPACE}/console-abort", id="drill"),
    ],
)
def test_mesh_pages_fit_a_narrow_window(mesh: Mesh, chromium: Any, hash_: str) -> None:
    context = chromium.new_context(viewport={"width": 390, "height": 800})
    pg = context.new_page()
    try:
        open_page(pg, mesh.url, hash_, timeout_s=60)
        assert pg.locator("main .error").count() == 0, pg.inner_text("main")
        assert pg.evaluate("document.documentElement.scrollWidth") <= 390
    finally:
        context.close()

"""The console in Debian's Chromium against a real sandbox, federator, collector and console.

Every check compares what the page shows with what the federator's gRPC API or the store's
query API answers (counts, names, values), or with the telemetry the test wrote itself.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from federator.api._generated.meshfed.v1 import federation_pb2 as pb
from federator.api._generated.meshfed.v1 import federation_pb2_grpc as pb_grpc
from tests.helpers.federator_harness import app_docs, apply
from tests.integration.console import world
from tests.integration.console.conftest import NAMESPACE, World, open_page, shoot, wait_for

pytestmark = pytest.mark.integration


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


def test_overview_shows_each_cluster_as_the_api_does(
    console_world: World, page: Any, tmp_path: Path
) -> None:
    settled(console_world)
    status = stub(console_world).GetStatus(pb.GetStatusRequest(), timeout=5)
    open_page(page, console_world.url, "/overview")
    assert page.inner_text("#n-clusters") == str(len(status.clusters)) == "3"
    assert page.inner_text("#n-services") == str(status.services)
    for c in status.clusters:
        card = page.locator(f"article.card[data-cluster='{c.name}']")
        assert card.locator("[data-field=exported]").inner_text() == str(c.exported_services)
        assert card.locator("[data-field=imported]").inner_text() == str(c.imported_services)
        assert card.locator("[data-field=reachable]").inner_text() == "yes"
        assert "healthy" in card.locator("h3").inner_text()
    # Regions come from the federation config: the sandbox puts c1, c2 and c3 in two regions.
    regions = page.locator("section.region h2").all_inner_texts()
    assert len(regions) == 2, regions
    # Three links, each with its state in words, all up with the gateways answering.
    links = page.locator("tr[data-link]")

    def all_up() -> bool:
        open_page(page, console_world.url, "/overview")
        return all("up" in t for t in links.all_inner_texts())

    wait_for("every gateway probed up", all_up, timeout=30)
    assert links.count() == 3
    shoot(page, "overview", tmp_path)


def test_services_matrix_matches_list_services(console_world: World, page: Any) -> None:
    settled(console_world)
    listed = stub(console_world).ListServices(pb.ListServicesRequest(), timeout=5)
    open_page(page, console_world.url, "/services")
    rows = page.locator("#svc-table tbody tr")
    assert rows.count() == len(listed.services)
    assert (
        page.inner_text("#svc-count")
        == f"{len(listed.services)} of {len(listed.services)} services"
    )
    row = page.locator(f"tr[data-service='{NAMESPACE}/reviews']")
    c1, c2, c3 = (row.locator(f"td[data-cluster={c}]") for c in ("c1", "c2", "c3"))
    assert c1.get_attribute("data-exported") == "1"
    assert "local 2/2 ready · remote 1" in c1.inner_text()
    assert "weight 67%" in c1.inner_text()
    assert "local 1/1 ready · remote 2" in c2.inner_text()
    assert "weight 33%" in c2.inner_text()
    assert c3.get_attribute("data-exported") == "0"
    assert "⬇ imported" in c3.inner_text() and "remote 3 ready" in c3.inner_text()
    # Filters: by name, then by the exporting cluster.
    page.fill("#svc-filter", "ratings")
    assert rows.count() == 1 and "ratings" in rows.first.inner_text()
    page.fill("#svc-filter", NAMESPACE)
    page.select_option("#svc-cluster", "c3")
    assert rows.all_inner_texts()[0].startswith(f"{NAMESPACE}/ratings") and rows.count() == 1
    page.select_option("#svc-cluster", "")


def test_services_matrix_shows_the_last_propagation_per_cell(
    console_world: World, page: Any, tmp_path: Path
) -> None:
    settled(console_world)
    # A new export is an observed change: its writes into every cluster are measured.
    apply(console_world.sandbox.kubeconfig, "c3", app_docs("propagated", NAMESPACE, replicas=1))

    def measured() -> pb.ServiceStatus | None:
        try:
            got = stub(console_world).GetService(
                pb.GetServiceRequest(key=pb.ServiceKey(namespace=NAMESPACE, name="propagated")),
                timeout=5,
            )
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None  # not exported yet: its pod is not ready
            raise
        targets = [t for t in got.service.targets if t.HasField("last_propagation_seconds")]
        return got.service if len(targets) == 3 else None

    wait_for("the new service's writes measured in c1, c2 and c3", measured, timeout=120)
    open_page(page, console_world.url, "/services")
    listed = stub(console_world).ListServices(pb.ListServicesRequest(), timeout=5)
    seen = 0
    for s in listed.services:
        row = page.locator(f"tr[data-service='{s.key.namespace}/{s.key.name}']")
        for t in s.targets:
            cell = row.locator(f"td[data-cluster={t.cluster}] [data-field=propagation]")
            shown = cell.get_attribute("data-seconds")
            if t.HasField("last_propagation_seconds"):
                seen += 1
                assert float(shown or "nan") == pytest.approx(t.last_propagation_seconds)
                assert "propagated in" in cell.inner_text()
            else:
                assert shown == "" and "propagation \u2013" in cell.inner_text()
    assert seen >= 3, seen
    row = page.locator(f"tr[data-service='{NAMESPACE}/propagated']")
    for cluster in ("c1", "c2", "c3"):
        seconds = row.locator(f"td[data-cluster={cluster}] [data-field=propagation]")
        assert 0 <= float(seconds.get_attribute("data-seconds") or "nan") < 60
    page.fill("#svc-filter", NAMESPACE)
    shoot(page, "services", tmp_path)


def test_service_page_draws_golden_signals_from_promql(
    console_world: World, page: Any, tmp_path: Path
) -> None:
    settled(console_world)
    open_page(page, console_world.url, f"/service/{NAMESPACE}/reviews")

    def last(signal: str, cluster: str, what: str = "last") -> float:
        item = page.locator(f"figure[data-signal='{signal}'] [data-cluster='{cluster}']")
        return float(item.get_attribute(f"data-{what}"))

    # Written: c1 9 ok + 1 failed per second, c2 2 ok; every request took 10..50 ms. Rates
    # are within the extrapolation PromQL's rate() does at the window's edge (samples every
    # 2 s, on a loaded machine sometimes later); ratios and quantiles are exact.
    # rate() extrapolates at the window's edge by the same factor for both clusters (written
    # together), so their ratio is exact even on a loaded machine: 10 / 2.
    assert last("Request rate", "c1") / last("Request rate", "c2") == pytest.approx(5.0, rel=0.01)
    assert last("Error ratio (5xx)", "c1") == pytest.approx(0.1, rel=0.02)
    assert last("Error ratio (5xx)", "c2") == pytest.approx(0.0, abs=1e-9)
    assert last("Latency p50", "c1") == pytest.approx(30.0, rel=0.02)
    assert last("Latency p99", "c2") == pytest.approx(49.6, rel=0.02)
    # Exactly what the store answers for the same PromQL at the same instant.
    q = (
        'sum by (cluster) (rate(istio_requests_total{reporter="destination",'
        f'destination_service_namespace="{NAMESPACE}",destination_service_name="reviews"}}[1m]))'
    )
    at = last("Request rate", "c1", "t")
    body = httpx.get(
        f"{console_world.collector.url}/api/v1/query", params={"query": q, "time": at}
    ).json()
    store = {r["metric"]["cluster"]: float(r["value"][1]) for r in body["data"]["result"]}
    assert store["c1"] == pytest.approx(last("Request rate", "c1"), rel=1e-9)
    assert store["c2"] == pytest.approx(last("Request rate", "c2"), rel=1e-9)
    # The objects meshfed wrote, read from each cluster: c3 imports reviews (SE and DR).
    shoot(page, "service", tmp_path)
    c3 = page.locator("details[data-cluster=c3] summary").inner_text()
    assert "ServiceEntry ✔" in c3 and "DestinationRule ✔" in c3
    page.click("details[data-cluster=c3] summary")
    assert "reviews.console-demo.svc." in page.locator("details[data-cluster=c3] pre").inner_text()


def test_traces_search_waterfall_and_logs(console_world: World, page: Any, tmp_path: Path) -> None:
    open_page(page, console_world.url, "/traces?service=productpage&status=error&limit=100")
    api = httpx.get(
        f"{console_world.collector.url}/api/search",
        params={"service": "productpage", "tags": "status.code=error", "limit": 100},
    ).json()
    assert len(api["traces"]) == 4  # every third of 12
    assert page.inner_text("#tr-count").startswith("4 traces")
    shown = set(page.locator("tr[data-trace]").evaluate_all("rs => rs.map(r => r.dataset.trace)"))
    assert shown == {t["traceID"] for t in api["traces"]}
    # A cluster filter: the root spans are in c1 (all 12 traces), none in c3.
    open_page(page, console_world.url, "/traces?service=productpage&cluster=c1&limit=100")
    assert page.inner_text("#tr-count").startswith("12 traces")
    open_page(page, console_world.url, "/traces?service=productpage&cluster=c3")
    assert page.inner_text("#tr-count").startswith("0 traces")
    trace = console_world.trace_ids[0]  # i = 0: failed
    open_page(page, console_world.url, f"/trace/{trace}")
    assert page.inner_text("#tr-spans") == "2"
    labels = page.locator(".wf .label").all_inner_texts()
    assert "productpage" in labels[0] and "c1" in labels[0]
    assert "reviews" in labels[1] and "c2" in labels[1]
    assert page.locator(".wf .bar.error").count() == 2
    assert page.inner_text("#tr-logs") == "2"
    logs = page.locator("section[aria-label='Logs of this trace'] tbody tr").all_inner_texts()
    assert any("GET /reviews 503 trace=0" in line for line in logs)
    shoot(page, "trace", tmp_path)


def test_logs_search_by_text_cluster_and_trace(console_world: World, page: Any) -> None:
    open_page(page, console_world.url, "/logs?contains=503&cluster=c2&limit=100")
    api = httpx.get(
        f"{console_world.collector.url}/api/logs",
        params={"contains": "503", "cluster": "c2", "limit": 100},
    ).json()
    assert len(api["logs"]) == 4
    assert page.inner_text("#lg-count").startswith("4 lines")
    rows = page.locator("#lg-results tbody tr").all_inner_texts()
    assert all("c2" in r and "503" in r for r in rows)
    trace = console_world.trace_ids[1]
    open_page(page, console_world.url, f"/logs?trace_id={trace}")
    assert page.inner_text("#lg-count").startswith("2 lines")
    # The trace link on a log line opens the trace.
    page.locator("#lg-results tbody tr a").first.click()
    page.wait_for_function("() => location.hash.startsWith('#/trace/')")
    page.wait_for_selector("#tr-spans")
    assert page.inner_text("#tr-spans") == "2"


def _receiver_totals(text: str, receiver: str) -> tuple[float, float]:
    stored = received = 0.0
    for line in text.splitlines():
        m = re.match(r"meshfed_receiver_(received|stored)_total\{([^}]*)\} (\S+)", line)
        if m and f'receiver="{receiver}"' in m.group(2):
            if m.group(1) == "stored":
                stored += float(m.group(3))
            else:
                received += float(m.group(3))
    return received, stored


def test_telemetry_health_shows_receivers_and_series(
    console_world: World, page: Any, tmp_path: Path
) -> None:
    # Telemetry flowing while the page measures ingest rates (bounded: 30 batches, ~3 s).
    def flow() -> None:
        for i in range(30):
            world.write_traces_and_logs(console_world.collector, 5, seed=100 + i, root="flow")
            time.sleep(0.1)

    flowing = threading.Thread(target=flow)
    flowing.start()
    try:
        time.sleep(0.5)
        open_page(page, console_world.url, "/health")
        rate = page.locator("tr[data-receiver=otlp_http] [data-field=received_per_s]")
        assert float(rate.inner_text().replace(",", "")) > 0
        shoot(page, "health", tmp_path)
    finally:
        flowing.join(timeout=60)
    open_page(page, console_world.url, "/health")
    metrics = httpx.get(f"{console_world.collector.url}/metrics").text
    for receiver in ("remote_write", "otlp_http"):
        received, stored = _receiver_totals(metrics, receiver)
        assert stored > 0
        row = page.locator(f"tr[data-receiver={receiver}]")
        for field, value in (("stored", stored), ("received", received)):
            shown = float(row.locator(f"[data-field={field}]").inner_text().replace(",", ""))
            if receiver == "otlp_http":  # idle now: exact
                assert shown == value, (receiver, field)
            else:  # the metrics feeder keeps writing: the page read came first
                assert 0 < shown <= value, (receiver, field)
    body = httpx.get(
        f"{console_world.collector.url}/api/v1/query",
        params={"query": 'count by (cluster) ({__name__=~".+"})'},
    ).json()
    for r in body["data"]["result"]:
        cluster = r["metric"].get("cluster", "")
        cell = page.locator(f"tr[data-cluster='{cluster}'] [data-field=series]")
        assert cell.inner_text().replace(",", "") == r["value"][1]
    assert page.locator("tr[data-cluster] meter").count() >= 2


def test_a_new_export_appears_live_without_reload(console_world: World, page: Any) -> None:
    settled(console_world)
    open_page(page, console_world.url, "/services")
    page.evaluate("window.__marker = 1")  # gone if the page reloaded
    apply(console_world.sandbox.kubeconfig, "c2", app_docs("details", NAMESPACE, replicas=1))
    page.wait_for_selector(f"tr[data-service='{NAMESPACE}/details']", timeout=60_000)
    assert page.evaluate("window.__marker") == 1
    assert "live" in page.inner_text("#live")


def _tab_to(pg: Any, selector: str, presses: int = 40) -> None:
    """Press Tab until ``selector`` has the focus (at most ``presses`` times)."""
    for _ in range(presses):
        pg.keyboard.press("Tab")
        if pg.evaluate(f"document.activeElement.matches({selector!r})"):
            return
    raise AssertionError(f"{selector} never got the focus by Tab")


def test_keyboard_alone_filters_and_opens_a_service(console_world: World, page: Any) -> None:
    settled(console_world)
    open_page(page, console_world.url, "/services")
    _tab_to(page, "#svc-filter")
    page.keyboard.type("ratings")
    assert page.locator("#svc-table tbody tr").count() == 1
    _tab_to(page, f"a[href='#/service/{NAMESPACE}/ratings']")
    page.keyboard.press("Enter")
    page.wait_for_function("() => location.hash.startsWith('#/service/')")
    page.wait_for_selector("#xds:not([aria-busy])")
    assert page.inner_text("main h1").startswith(f"{NAMESPACE}/ratings")
    # The focus moved to the page content, so the next Tab starts there, not in the header.
    assert page.evaluate("document.activeElement.id") == "main"


PAGES = [
    pytest.param("/overview", id="overview"),
    pytest.param("/services", id="services"),
    pytest.param(f"/service/{NAMESPACE}/reviews", id="service"),
    pytest.param("/traces?service=productpage", id="traces"),
    pytest.param("/logs?cluster=c2", id="logs"),
    pytest.param("/health", id="health"),
    pytest.param("/drills", id="drills"),
]


@pytest.mark.parametrize("hash_", PAGES)
@pytest.mark.parametrize(
    "width", [pytest.param(1280, id="1280x800"), pytest.param(390, id="narrow")]
)
def test_every_page_fits_the_window_and_says_states_in_words(
    console_world: World, chromium: Any, hash_: str, width: int
) -> None:
    context = chromium.new_context(viewport={"width": width, "height": 800})
    pg = context.new_page()
    try:
        open_page(pg, console_world.url, hash_)
        # Wide tables scroll inside their own box; the page itself never scrolls sideways.
        assert pg.evaluate("document.documentElement.scrollWidth") <= width
        # Colour is never the only signal: every badge has an icon and a word.
        badges = pg.locator(".badge").all_inner_texts()
        assert all(re.match(r"^\S+ .*[A-Za-z]", b) for b in badges), badges
        # Text is not smaller than 11 px anywhere on the page.
        smallest = pg.evaluate(
            "Math.min(...[...document.querySelectorAll('main *')].filter(e => e.innerText)"
            ".map(e => parseFloat(getComputedStyle(e).fontSize)))"
        )
        assert smallest >= 11, smallest
    finally:
        context.close()


def test_keyboard_and_narrow_window(console_world: World, chromium: Any) -> None:
    context = chromium.new_context(viewport={"width": 390, "height": 800})
    pg = context.new_page()
    try:
        open_page(pg, console_world.url, "/overview")
        # Tab past the skip link to the first nav link, then on to Services, and open it.
        pg.keyboard.press("Tab")
        assert pg.evaluate("document.activeElement.textContent") == "Skip to content"
        pg.keyboard.press("Tab")
        pg.keyboard.press("Tab")
        assert pg.evaluate("document.activeElement.textContent") == "Services"
        pg.keyboard.press("Enter")
        pg.wait_for_selector("#svc-table tbody tr")
        assert pg.get_attribute("nav a[data-page=services]", "aria-current") == "page"
        # Nothing wider than the window except inside the scrolling table box.
        width = pg.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, width
    finally:
        context.close()


def test_missing_chromium_fails_with_the_install_command(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="apt-get install -y chromium"):
        world.chromium_path(str(tmp_path / "no-chromium"), search_path=str(tmp_path))


def test_drills_page_lists_what_list_drills_answers(console_world: World, page: Any) -> None:
    open_page(page, console_world.url, "/drills")
    try:
        drills = stub(console_world).ListDrills(pb.ListDrillsRequest(), timeout=10).drills
    except grpc.RpcError as error:
        # No drills API here (e.g. no home cluster): the page says what the federator said.
        assert error.code().name in page.inner_text("main .error")
        return
    names = page.locator("tr[data-drill]").evaluate_all("rs => rs.map(r => r.dataset.drill)")
    assert names == [f"{d.namespace}/{d.name}" for d in drills]
    if not drills:
        assert "No drills." in page.inner_text("main")

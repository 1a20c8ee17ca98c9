"""The console's federation pages in Debian's Chromium against a real sandbox, federator,
collector and console: Overview, Services, one Service, Drills, and live updates.

Every check compares what the page shows with what the federator's gRPC API or the store's
query API answers (counts, names, values), or with the telemetry the world writes itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from federator.api._generated.meshfed.v1 import federation_pb2 as pb
from tests.helpers.federator_harness import app_docs, apply
from tests.integration.console.conftest import (
    NAMESPACE,
    World,
    open_page,
    settled,
    shoot,
    stub,
    wait_for,
)

pytestmark = pytest.mark.integration


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


def test_a_new_export_appears_live_without_reload(console_world: World, page: Any) -> None:
    settled(console_world)
    open_page(page, console_world.url, "/services")
    page.evaluate("window.__marker = 1")  # gone if the page reloaded
    apply(console_world.sandbox.kubeconfig, "c2", app_docs("details", NAMESPACE, replicas=1))
    page.wait_for_selector(f"tr[data-service='{NAMESPACE}/details']", timeout=60_000)
    assert page.evaluate("window.__marker") == 1
    assert "live" in page.inner_text("#live")


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

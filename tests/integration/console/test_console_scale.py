"""The Services page with 3 clusters x 300 global services: it renders every row, and the
load time is reported (not asserted: ``bench/console_services.py`` is the benchmark)."""

from __future__ import annotations

import os
import statistics
from typing import Any

import pytest

from tests.helpers.federator_harness import kubectl, wait_for
from tests.integration.console import scale
from tests.integration.console.conftest import World, open_page

pytestmark = pytest.mark.integration

NAMESPACE = "console-scale"
SERVICES = 300


def test_services_page_with_300_services_in_3_clusters(
    console_world: World, chromium: Any, page: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    kc = console_world.sandbox.kubeconfig
    clusters = ["c1", "c2", "c3"]
    try:
        scale.create_scale_services(kc, NAMESPACE, SERVICES, clusters)
        wait_for(
            f"{SERVICES} services federated into every cluster",
            lambda: scale.listed_count(console_world.federator.grpc, NAMESPACE) == SERVICES,
            timeout=300,
            interval=2,
        )
        timings = scale.services_page_load_ms(chromium, console_world.url, SERVICES)
        with capsys.disabled():
            print(
                f"\nServices page, 3 clusters x {SERVICES}+ services: load "
                f"{', '.join(f'{t:.0f}' for t, _ in timings)} ms (median "
                f"{statistics.median(t for t, _ in timings):.0f} ms; /api/services fetch "
                f"{', '.join(f'{f:.0f}' for _, f in timings)} ms), "
                f"load average {os.getloadavg()[0]:.2f}"
            )
        # What the page shows: every service of the namespace, each exported in one cluster.
        open_page(page, console_world.url, "/services")
        page.fill("#svc-filter", f"{NAMESPACE}/")
        rows = page.locator("#svc-table tbody tr")
        assert rows.count() == SERVICES
        assert page.inner_text("#svc-count").startswith(f"{SERVICES} of ")
        exported = page.locator("#svc-table td[data-exported='1']").count()
        assert exported == SERVICES
        row = page.locator(f"tr[data-service='{NAMESPACE}/svc-004']")
        assert row.locator("td[data-cluster=c2]").get_attribute("data-exported") == "1"
        assert "remote 1 ready" in row.locator("td[data-cluster=c1]").inner_text()
    finally:
        for c in clusters:
            kubectl(kc, c, "delete", "namespace", NAMESPACE, "--wait=false", check=False)

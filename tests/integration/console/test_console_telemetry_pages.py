"""The console's telemetry pages in Debian's Chromium against a real collector: trace search
and waterfall, log search, and the Telemetry health page.

Every check compares what the page shows with what the store's query API answers, or with the
spans and logs the world wrote itself (``known_telemetry``).
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.console import known_telemetry
from tests.integration.console.conftest import World, open_page, shoot

pytestmark = pytest.mark.integration


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
            known_telemetry.write_traces_and_logs(
                console_world.collector, 5, seed=100 + i, root="flow"
            )
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

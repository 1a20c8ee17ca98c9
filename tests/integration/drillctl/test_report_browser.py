"""The HTML report in headless Chromium (Debian's ``chromium``, driven by Playwright): it
renders without a network request or a console error, every chart draws, and what a reader
looks for first (verdict, breach, rollback time) is on screen without scrolling."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from federator.core.drills.summary import read_drill
from federator.drillctl.report import build_report
from federator.drillctl.report_html import to_html
from tests.unit.federator.core.drills.journal_sim import T0
from tests.unit.federator.drillctl.samples import run, telemetry

pytestmark = pytest.mark.timeout(120)
INSTALL = "apt-get install -y chromium && .venv/bin/pip install playwright"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail(f"Debian's chromium is not installed: {INSTALL} (or scripts/setup.sh)")
    try:
        from playwright.sync_api import sync_playwright  # noqa: PLC0415 - fail with a hint
    except ImportError:
        pytest.fail(f"playwright is not installed: {INSTALL} (or scripts/setup.sh)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield b
        b.close()


def page_of(tmp_path: Path, breach_after: float | None) -> Path:
    now = T0 + 3600
    doc, journal = run(breach_after=breach_after)
    read = read_drill(doc)
    report = build_report(
        obj=doc, spec=read.spec, journal=read.journal, telemetry=telemetry(journal, now=now),
        now=now,
    )  # fmt: skip
    path = tmp_path / "report.html"
    path.write_text(to_html(report))
    return path


@pytest.mark.parametrize(
    ("breach_after", "verdict"),
    [pytest.param(20.0, "Refuted", id="breach"), pytest.param(None, "Confirmed", id="completed")],
)
def test_report_renders_offline_with_every_chart(
    browser: Any, tmp_path: Path, breach_after: float | None, verdict: str
) -> None:
    path = page_of(tmp_path, breach_after)
    page = browser.new_page(viewport={"width": 1240, "height": 900})
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    assert requests == [path.as_uri()], "the page must load nothing but itself"
    assert errors == []
    badge = page.locator(".badge")
    assert badge.inner_text() == verdict and badge.is_visible()
    assert badge.bounding_box()["y"] < 900
    charts = page.locator("svg")
    assert charts.count() == 9
    for i in range(charts.count()):
        box = charts.nth(i).bounding_box()
        assert box is not None and box["width"] > 400 and box["height"] > 100
    assert page.locator("polyline").count() == 2 * 4 * 3  # services x signals x clusters
    if breach_after is not None:
        assert page.get_by_text("Breach:").is_visible()
        card = page.locator(".card", has_text="breach -> rollback verified")
        assert card.locator("b").inner_text().endswith("s")
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000
    page.close()

"""The console without a mouse and in a narrow window, in Debian's Chromium: keyboard-only
navigation, every page fitting 1280 and 390 pixels wide, states said in words (never colour
alone), readable text sizes; and a missing Chromium failing with the install command.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.integration.console import browser
from tests.integration.console.conftest import NAMESPACE, World, open_page, settled

pytestmark = pytest.mark.integration


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
        browser.chromium_path(str(tmp_path / "no-chromium"), search_path=str(tmp_path))

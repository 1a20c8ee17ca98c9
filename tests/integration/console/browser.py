"""Debian's Chromium for the console's browser tests, driven by Playwright.

A machine without Chromium fails the tests with the command that installs it (never a skip).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("MESHFED_CHROMIUM", "/usr/bin/chromium")
INSTALL_CHROMIUM = "sudo apt-get install -y chromium   (or: bash scripts/setup.sh)"


def chromium_path(candidate: str = CHROMIUM, search_path: str | None = None) -> str:
    """Debian's Chromium; a missing one fails the test with the command that installs it."""
    found = candidate if Path(candidate).exists() else shutil.which("chromium", path=search_path)
    if not found:
        raise AssertionError(
            f"Chromium is needed for the console's browser tests and is not at {candidate} "
            f"nor on PATH. Install it: {INSTALL_CHROMIUM}"
        )
    return found


@contextlib.contextmanager
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - only the browser tests

    path = chromium_path()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()

"""Where things are in the checkout, so tests do not count ``parents[n]`` from their own depth."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
HELPERS = REPO_ROOT / "tests" / "helpers"

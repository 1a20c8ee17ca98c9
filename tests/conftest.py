"""Test-suite wiring: shared fixtures come from plugins in ``tests/helpers``; markers from paths.

Every test under ``tests/unit`` is marked ``unit`` and every test under ``tests/integration``
is marked ``integration`` here, so ``make unit`` / ``make integration`` select by directory and
no test file has to remember its marker.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = [
    "tests.helpers.sandbox",
    "tests.helpers.istio",
    "tests.helpers.gateways",
    "tests.helpers.prometheus_peer",
]

_TESTS = Path(__file__).parent
_MARKER_BY_DIRECTORY = {"unit": pytest.mark.unit, "integration": pytest.mark.integration}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        relative = item.path.relative_to(_TESTS)
        marker = _MARKER_BY_DIRECTORY.get(relative.parts[0])
        if marker is None:
            raise pytest.UsageError(
                f"{item.nodeid}: tests live under tests/unit or tests/integration"
            )
        item.add_marker(marker)

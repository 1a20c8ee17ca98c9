"""The collector under test: a real ``meshfed collect`` on embedded Redis, stopped (and its
Redis with it) whatever the test did."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.collectors.kill_under_load.collector import CollectorProcess


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[CollectorProcess]:
    c = CollectorProcess(tmp_path / "collect")
    try:
        yield c
    finally:
        c.stop()

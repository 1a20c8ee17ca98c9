"""Fixtures: one in-process federator over the shared 3-cluster sandbox for the module; real
listeners on the sandbox's east-west gateway addresses for every test here (the federator
probes them, R4)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from federator.core.config_parse import load_config
from tests.helpers.federator_harness import FederatorThread, wait_for
from tests.helpers.gateways import GatewayListener
from tests.helpers.sandbox import RunningSandbox


@pytest.fixture(scope="session", autouse=True)
def _gateways_answer(gateway_listeners: dict[str, GatewayListener]) -> None:
    """Every federator test runs with answering gateways unless it stops one itself."""


@pytest.fixture(scope="module")
def federator(sandbox: RunningSandbox) -> Iterator[FederatorThread]:
    fed = FederatorThread(load_config(sandbox.directory / "federation.yaml"))
    try:
        wait_for("federator ready", lambda: fed.status.ready, timeout=30)
        yield fed
    finally:
        fed.stop()

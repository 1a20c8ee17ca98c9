"""The shared sandbox fixture (a pytest plugin registered by ``tests/conftest.py``).

``sandbox`` is session-scoped: three real clusters (etcd, kube-apiserver, controller-manager,
scheduler, kwok) start once per test run and stop at the end. It uses its own base port so a
developer's ``.sandbox`` on the default ports keeps running beside the tests.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshfed.sandbox.layout import SandboxLayout, Topology
from meshfed.sandbox.manager import Sandbox

TEST_SANDBOX_BASE_PORT = int(os.environ.get("MESHFED_TEST_BASE_PORT", "23000"))
TEST_SANDBOX_CLUSTERS = 3


class RunningSandbox:
    """A started sandbox and its layout, handed to tests."""

    def __init__(self, sandbox: Sandbox, layout: SandboxLayout) -> None:
        self.sandbox = sandbox
        self.layout = layout

    @property
    def kubeconfig(self) -> Path:
        return self.sandbox.kubeconfig

    @property
    def directory(self) -> Path:
        return self.sandbox.directory


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    """Three clusters in two regions, gateway topology (the federator's default)."""
    sb = Sandbox(tmp_path_factory.mktemp("sandbox"))
    try:
        layout = sb.up(
            clusters=TEST_SANDBOX_CLUSTERS,
            topology=Topology.GATEWAY,
            base_port=TEST_SANDBOX_BASE_PORT,
        )
        yield RunningSandbox(sb, layout)
    finally:
        sb.down()

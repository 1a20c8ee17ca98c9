"""One 3-cluster Istio sandbox (gateway topology) shared by the drill test modules, the Drill
CRD in the home cluster (c1), a global service exported from c1 (2 pods) and c2 (1 pod), and
``meshfed federate`` running with drills enabled, its guards querying a real ``meshfed collect``."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.helpers.drills import DrillFederator, install_crd, running_collector
from tests.helpers.federator_harness import app_docs, apply
from tests.helpers.istio import (
    IstioSandbox,
    clusterset_host,
    gateways,
    outbound,
    running_istio_sandbox,
    wait_served,
)

BASE_PORT = int(os.environ.get("MESHFED_TEST_ISTIO_BASE_PORT", "25000")) + 200
SERVICE = "drilled"
PORT = 9080
HOST = clusterset_host(SERVICE)
BOTH = {"127.0.1.1": 2, "127.0.2.1": 1}
"""What c3 serves for the service without a drill: c1's and c2's gateways, by pod count."""


@pytest.fixture(scope="package")
def drill_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IstioSandbox]:
    with running_istio_sandbox(
        tmp_path_factory.mktemp("drills"), clusters=3, base_port=BASE_PORT,
        why="The drill runtime tests need it.",
    ) as (sb, layout):  # fmt: skip
        istio = IstioSandbox(sb, layout)
        install_crd(istio)
        apply(istio.kubeconfig, "c1", app_docs(SERVICE, replicas=2))
        apply(istio.kubeconfig, "c2", app_docs(SERVICE, replicas=1))
        yield istio


@pytest.fixture(scope="package")
def drill_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``meshfed collect`` (embedded Redis): the store the guards query."""
    with running_collector(tmp_path_factory.mktemp("drill-store")) as http:
        yield http


@pytest.fixture(scope="package")
def drill_federator(drill_sandbox: IstioSandbox, drill_store: str) -> Iterator[DrillFederator]:
    # transientRetry: test_transient restarts a member apiserver mid-drill; on a loaded
    # machine its start and the federator's resync can take longer than the 30s default.
    drills = {"queryUrl": f"http://{drill_store}", "transientRetry": "3m"}
    fed = DrillFederator(drill_sandbox, drills=drills)
    fed.start()
    try:
        wait_served(
            drill_sandbox, "c3", outbound(HOST, PORT), lambda v: gateways(v) == BOTH,
            what="the federated service before any drill",
        )  # fmt: skip
        yield fed
    finally:
        fed.stop()

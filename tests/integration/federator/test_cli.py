"""The federator's CLI as a real subprocess: federate (/readyz, /metrics), plan exit codes,
clusters table, and start-up failures on bad configuration."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers.federator_harness import app_docs, apply, kubectl, service_entry, wait_for
from tests.helpers.gateways import TEST_GATEWAY_PORT
from tests.helpers.sandbox import RunningSandbox

MESHFED = [str(Path(sys.executable).parent / "meshfed")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(sandbox: RunningSandbox, tmp_path: Path, **changes: Any) -> Path:
    doc = yaml.safe_load((sandbox.directory / "federation.yaml").read_text())
    doc["listen"] = {"http": f"127.0.0.1:{_free_port()}", "grpc": f"127.0.0.1:{_free_port()}"}
    doc["gatewayProbe"] = {"port": TEST_GATEWAY_PORT}
    doc.update(changes)
    path = tmp_path / "federation.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MESHFED, *args], capture_output=True, text=True, timeout=60, check=False
    )


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return 0, ""


def _creates(text: str) -> set[tuple[str, str]]:
    """{(cluster, "Kind ns/name")} of the create lines of a plan."""
    out, cluster = set(), ""
    for line in text.splitlines():
        if m := re.match(r"cluster (\S+):", line):
            cluster = m.group(1)
        elif m := re.match(r"\+ create (\S+ \S+)", line):
            out.add((cluster, m.group(1)))
    return out


def test_plan_then_federate_then_plan_is_clean(sandbox: RunningSandbox, tmp_path: Path) -> None:
    kc = sandbox.kubeconfig
    ns, name = "plan-test", "planned"
    config = _config(sandbox, tmp_path)
    for ctx in ("c1", "c2", "c3"):
        kubectl(kc, ctx, "create", "namespace", ns, check=False)
    apply(kc, "c1", app_docs(name, ns, replicas=1))
    proc = None
    try:
        before = _run("plan", "--config", str(config))
        assert before.returncode == 2, before.stdout + before.stderr
        planned = {c for c in _creates(before.stdout) if f" {ns}/" in c[1]}
        assert planned == {
            (c, f"{kind} {ns}/meshfed-{name}")
            for c in ("c1", "c2", "c3")
            for kind in ("DestinationRule", "ServiceEntry")
        }
        proc = subprocess.Popen(
            [*MESHFED, "federate", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        http = yaml.safe_load(config.read_text())["listen"]["http"]
        assert _get(f"http://{http}/healthz")[0] in (0, 200)
        wait_for("/readyz 200", lambda: _get(f"http://{http}/readyz")[0] == 200, timeout=40)
        for ctx in ("c1", "c2", "c3"):
            wait_for(f"entry in {ctx}", lambda c=ctx: service_entry(kc, c, name, ns) is not None)  # type: ignore[misc]
        status, metrics = _get(f"http://{http}/metrics")
        assert status == 200
        assert "meshfed_federator_cluster_synced" in metrics
        assert 'meshfed_federator_reconciles_total{result="success"}' in metrics
        grpc = yaml.safe_load(config.read_text())["listen"]["grpc"]
        shown = subprocess.run(
            [*MESHFED, "status", "--server", grpc],
            capture_output=True, text=True, timeout=30, check=False,
            env={**os.environ, "COLUMNS": "200"},
        )  # fmt: skip
        assert shown.returncode == 0, shown.stderr
        assert "federator ready: 3 clusters" in shown.stdout, shown.stdout
        assert f"{ns}/{name}" in shown.stdout, shown.stdout

        def clean() -> subprocess.CompletedProcess[str] | None:
            after = _run("plan", "--config", str(config))
            return after if after.returncode == 0 else None

        after = wait_for("plan reports no changes", clean, timeout=30, interval=1)
        assert "0 to create, 0 to update, 0 to delete" in after.stdout
        table = _run("clusters", "--config", str(config))
        assert table.returncode == 0 and "c3" in table.stdout and "yes" in table.stdout
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=20) == 0
        kubectl(
            kc, "c1", "delete", "deployment,service", name, "-n", ns, "--wait=false", check=False
        )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(
            {"failover": {"regions": ["region-a", "mars"]}},
            "failover.regions[1]",
            id="unknown-failover-region",
        ),
        pytest.param("duplicate", "is a duplicate of", id="duplicate-cluster-names"),
        pytest.param("unsafe", "users[0].user.exec", id="unsafe-kubeconfig"),
    ],
)
def test_bad_configuration_fails_at_start(
    sandbox: RunningSandbox, tmp_path: Path, change: Any, message: str
) -> None:
    doc = yaml.safe_load((sandbox.directory / "federation.yaml").read_text())
    if change == "duplicate":
        doc["clusters"][1]["name"] = doc["clusters"][0]["name"]
    elif change == "unsafe":
        unsafe = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "x", "cluster": {"server": "https://127.0.0.1:1"}}],
            "users": [{"name": "x", "user": {"exec": {"command": "steal-token"}}}],
            "contexts": [{"name": "x", "context": {"cluster": "x", "user": "x"}}],
            "current-context": "x",
        }
        (tmp_path / "unsafe.kubeconfig").write_text(yaml.safe_dump(unsafe))
        doc["clusters"][2]["kubeconfig"] = {"path": str(tmp_path / "unsafe.kubeconfig")}
    else:
        doc.update(change)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc))
    out = _run("federate", "--config", str(path))
    assert out.returncode == 1
    assert out.stderr.startswith("error: ") and message in out.stderr, out.stderr

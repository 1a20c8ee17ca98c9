"""``meshfed demo --quick`` end to end, as ``make demo`` runs it, then ``meshfed demo down``.

The demo starts its own 3-cluster sandbox with istiod, ``meshfed collect``, ``meshfed
federate`` with drills, Bookinfo, the load generator and the console, runs the webinar's steps
as drills and judges each by what istiod serves in every cluster and by the store's telemetry.
This test asserts every row of its table was seen, that each drill left a report, and that
``down`` leaves no process and no open port behind.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from meshfed.demo.state import Ports
from meshfed.sandbox import processes
from meshfed.sandbox.layout import Topology, plan_layout
from tests.helpers.istio import ISTIO_SANDBOX_BASE_PORT, MESHFED

BASE_PORT = int(os.environ.get("MESHFED_TEST_DEMO_BASE_PORT", str(ISTIO_SANDBOX_BASE_PORT + 400)))
STEPS = (
    "install", "certs", "Bookinfo", "east-west gateways", "route jason -> v2",
    "delay 7s for jason", "abort 500 for jason", "canary v1:50 v3:50", "canary v3:100",
    "fail ratings over to region-b", "telemetry in one place",
)  # fmt: skip


def _pids(directory: Path) -> dict[str, int]:
    """Every process the demo and its sandbox recorded."""
    demo = json.loads((directory / "demo.json").read_text())
    sandbox = processes.load_state(directory / "sandbox")
    assert sandbox is not None
    pids = {n: int(r["pid"]) for n, r in demo["processes"].items()}
    pids.update({f"sandbox/{n}": r.pid for n, r in sandbox.processes.items()})
    return pids


def _running(pid: int) -> bool:
    """Alive and not a zombie (a detached process whose reaper has not collected it yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def test_demo_quick_then_down(tmp_path: Path) -> None:
    directory = tmp_path / "demo"
    run = subprocess.run(
        [MESHFED, "demo", "--quick", "--dir", str(directory), "--base-port", str(BASE_PORT)],
        capture_output=True, text=True, timeout=420, check=False,
    )  # fmt: skip
    try:
        summary = json.loads((directory / "summary.json").read_text())
        rows = summary["rows"]
        not_seen = [f"{r['step']}: {r['seen']}" for r in rows if not r["ok"]]
        assert run.returncode == 0 and not not_seen, run.stdout[-6000:] + run.stderr[-3000:]
        titles = " | ".join(r["step"] for r in rows)
        for step in STEPS:
            assert step in titles, f"{step!r} missing from the table: {titles}"
        drills = [r for r in rows if r["step"].endswith(": rollback")]
        assert len(drills) == 5 and all("baseline served again" in r["seen"] for r in drills)
        for r in drills:
            report = Path(r["where"])
            assert report.exists() and "<html" in report.read_text()[:500].lower(), report
        propagated = [r for r in rows if r["latency_s"] is not None and "->" in r["step"]]
        assert propagated and all(0 <= r["latency_s"] < 10 for r in propagated), propagated
        pids = _pids(directory)
        assert {"collect", "federate", "console", "loadgen"} <= set(pids)
    finally:
        down = subprocess.run(
            [MESHFED, "demo", "down", "--dir", str(directory)],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    assert down.returncode == 0, down.stdout + down.stderr
    alive = [n for n, pid in pids.items() if _running(pid)]
    assert not alive, f"still running after down: {alive}"
    layout = plan_layout(directory=directory / "sandbox", clusters=3,
                         topology=Topology.GATEWAY, base_port=BASE_PORT, istio=True)  # fmt: skip
    ports = (*layout.ports, *Ports.from_base(BASE_PORT).all())
    assert not [p for p in ports if processes.port_open(p)], "ports still open after down"
    assert not (directory / "demo.json").exists()

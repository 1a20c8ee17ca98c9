"""SIGKILL of the federator mid-drill: the restarted process (a new leader) finds the drill
running, rolls it back (``LeaderLost``) and verifies the rollback."""

from __future__ import annotations

from tests.helpers.drills import (
    DrillFederator,
    create_drill,
    events,
    terminal,
    wait_status,
    wait_virtual_host,
)
from tests.helpers.istio import IstioSandbox
from tests.integration.drills.conftest import HOST, PORT, SERVICE


def test_sigkill_mid_drill_rolls_back_and_verifies_after_restart(
    drill_sandbox: IstioSandbox, drill_federator: DrillFederator
) -> None:
    sb = drill_sandbox
    spec = {
        "services": [{"namespace": "default", "name": SERVICE}],
        "ttl": "5m",
        "steps": [{"name": "long-abort", "duration": "4m",
                   "abort": {"percentage": 100, "httpStatus": 503}}],
    }  # fmt: skip
    assert create_drill(sb, "crash", spec).returncode == 0
    wait_status(sb, "crash", lambda s: len(s.get("applied") or []) == 3, what="step applied")
    wait_virtual_host(sb, "c3", HOST, PORT, lambda t: "abort=503" in t, what="abort")
    drill_federator.kill()
    drill_federator.start()
    status = wait_status(sb, "crash", terminal, what="a terminal phase after the restart")
    assert status["phase"] == "Aborted" and status["reason"] == "LeaderLost", status
    assert [e["reason"] for e in events(status, "Exit")] == ["LeaderLost"]
    assert events(status, "Verified")[-1]["holds"] is True
    for ctx in ("c1", "c2", "c3"):
        wait_virtual_host(sb, ctx, HOST, PORT, lambda t: '"httpStatus": 503' not in t,
                          what="the abort gone after the crash rollback")  # fmt: skip

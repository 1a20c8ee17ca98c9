"""A member apiserver that restarts mid-drill delays the next step; it does not end the run.

The fault is real: c3's kube-apiserver is stopped after step 0 is applied everywhere, so
step 1 cannot be written there (connection refused, then a resync after the restart). The
controller retries the action (``drills.transientRetry``) and the drill completes with both
steps applied in every target and its rollback verified. Runs last in the package: the
cluster is whole again when it ends.
"""

from __future__ import annotations

import re
from typing import Any

from tests.helpers.apiserver_fault import set_apiserver
from tests.helpers.drills import (
    DrillFederator,
    create_drill,
    drill_status,
    events,
    terminal,
    wait_status,
)
from tests.helpers.federator_harness import wait_for
from tests.helpers.istio import IstioSandbox
from tests.integration.drills.conftest import SERVICE

TARGETS = ["c1", "c2", "c3"]
SPEC = {
    "services": [{"namespace": "default", "name": SERVICE}],
    "ttl": "5m",
    "steps": [
        {"name": "s0", "duration": "4s", "abort": {"percentage": 100, "httpStatus": 503}},
        {"name": "s1", "duration": "2s", "delay": {"percentage": 50, "fixedDelay": "1s"}},
    ],
}


def _applied(status: dict[str, Any], step: int) -> list[str]:
    return sorted(e["cluster"] for e in events(status, "StepApplied") if e["step"] == step)


def _retries(fed: DrillFederator) -> float:
    found = re.search(
        r'^meshfed_drill_action_retries_total\{action="ApplyStep"\} (\S+)$', fed.metrics(), re.M
    )
    return float(found.group(1)) if found else 0.0


def test_member_apiserver_restart_mid_drill_is_retried_not_ended(
    drill_sandbox: IstioSandbox, drill_federator: DrillFederator
) -> None:
    name = "apiserver-restart"
    assert create_drill(drill_sandbox, name, SPEC).returncode == 0
    wait_status(
        drill_sandbox, name, lambda s: _applied(s, 0) == TARGETS or terminal(s),
        what="step 0 applied in every target", timeout=120,
    )  # fmt: skip
    retries_before = _retries(drill_federator)
    set_apiserver(drill_sandbox.directory, "c3", running=False)
    try:
        wait_for(
            "step 1 retried while c3's apiserver is down",
            lambda: _retries(drill_federator) > retries_before,
            timeout=60,
        )
        during = drill_status(drill_sandbox, name)
        assert during.get("phase") == "Running", during
        assert not events(during, "Exit"), during
    finally:
        set_apiserver(drill_sandbox.directory, "c3", running=True)
    status = wait_status(drill_sandbox, name, terminal, what="a terminal phase", timeout=240)
    assert status["phase"] == "Succeeded", status
    [exit_event] = events(status, "Exit")
    assert exit_event["reason"] == "Completed", exit_event
    assert _applied(status, 1) == TARGETS, status
    verified = events(status, "Verified")
    assert verified and verified[-1]["holds"] is True, verified

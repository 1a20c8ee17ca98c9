"""What a drill refuses to do: a bad spec (admission or a ``Refused`` status naming the
field), a user's own VirtualService on the host (left untouched), and a freeze (halts a
running drill, refuses a new one)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers.drills import (
    HOME,
    NAMESPACE,
    DrillFederator,
    create_drill,
    events,
    terminal,
    wait_status,
    wait_virtual_host,
)
from tests.helpers.federator_harness import apply, get_json, kubectl
from tests.helpers.istio import IstioSandbox
from tests.integration.drills.conftest import HOST, PORT, SERVICE

SERVICES = [{"namespace": "default", "name": SERVICE}]
ABORT = {"name": "s0", "duration": "30s", "abort": {"percentage": 100, "httpStatus": 503}}


def _refused(sb: IstioSandbox, name: str) -> dict[str, Any]:
    status = wait_status(sb, name, terminal, what="a terminal phase")
    assert status["phase"] == "Refused", status
    return status


def _exit_message(status: dict[str, Any]) -> str:
    return " ".join(e.get("message", "") for e in events(status, "Exit"))


@pytest.mark.parametrize(
    ("name", "steps", "field"),
    [
        pytest.param(
            "bad-percentage",
            [{"name": "s0", "duration": "5s", "abort": {"percentage": 150, "httpStatus": 503}}],
            "spec.steps[0].abort.percentage",
            id="schema-rejects-percentage",
        ),
    ],
)
def test_admission_rejects_bad_spec_naming_the_field(
    drill_sandbox: IstioSandbox, name: str, steps: list[dict[str, Any]], field: str
) -> None:
    out = create_drill(drill_sandbox, name, {"services": SERVICES, "ttl": "1m", "steps": steps})
    assert out.returncode != 0
    assert field in out.stderr, out.stderr


@pytest.mark.parametrize(
    ("name", "spec", "field"),
    [
        pytest.param(
            "unknown-cluster",
            {"services": SERVICES, "ttl": "1m",
             "steps": [{"name": "s0", "duration": "5s", "drain": {"clusters": ["c9"]}}]},
            "spec.steps[0].drain.clusters[0]",
            id="unknown-cluster",
        ),
        pytest.param(
            "unknown-service",
            {"services": [{"namespace": "default", "name": "nope"}], "ttl": "1m", "steps": [ABORT]},
            "spec.services[0]",
            id="unknown-service",
        ),
    ],
)  # fmt: skip
def test_controller_refuses_spec_naming_the_field(
    drill_sandbox: IstioSandbox,
    drill_federator: DrillFederator,
    name: str,
    spec: dict[str, Any],
    field: str,
) -> None:
    out = create_drill(drill_sandbox, name, spec)
    assert out.returncode == 0, out.stderr
    status = _refused(drill_sandbox, name)
    assert field in _exit_message(status), status
    assert not events(status, "StepStarted")


def test_user_virtual_service_refuses_the_drill_and_stays_untouched(
    drill_sandbox: IstioSandbox, drill_federator: DrillFederator
) -> None:
    sb = drill_sandbox
    user = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "users-own", "namespace": "default"},
        "spec": {"hosts": [HOST], "http": [{"route": [{"destination": {"host": HOST}}]}]},
    }
    apply(sb.kubeconfig, "c2", [user])
    before = get_json(sb.kubeconfig, "c2", "virtualservice", "users-own", "-n", "default")
    try:
        assert create_drill(sb, "user-vs", {"services": SERVICES, "ttl": "1m",
                                            "steps": [ABORT]}).returncode == 0  # fmt: skip
        status = _refused(sb, "user-vs")
        message = _exit_message(status)
        assert "VirtualService default/users-own in cluster c2" in message, message
        after = get_json(sb.kubeconfig, "c2", "virtualservice", "users-own", "-n", "default")
        assert after["spec"] == before["spec"]
        assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
        assert after["metadata"].get("managedFields") == before["metadata"].get("managedFields")
    finally:
        kubectl(sb.kubeconfig, "c2", "delete", "virtualservice", "users-own", "-n", "default",
                check=False)  # fmt: skip


def test_freeze_halts_a_running_drill_and_refuses_a_new_one(
    drill_sandbox: IstioSandbox, drill_federator: DrillFederator
) -> None:
    sb = drill_sandbox
    spec = {"services": SERVICES, "ttl": "2m", "steps": [ABORT]}
    assert create_drill(sb, "frozen-run", spec).returncode == 0
    wait_status(sb, "frozen-run", lambda s: s.get("phase") == "Running" and len(
        s.get("applied") or []) == 3, what="running with the step applied")  # fmt: skip
    kubectl(sb.kubeconfig, HOME, "create", "configmap", "meshfed-drills-freeze", "-n", NAMESPACE)
    try:
        status = wait_status(sb, "frozen-run", terminal, what="a terminal phase")
        assert status["phase"] == "Aborted" and status["reason"] == "Frozen", status
        assert events(status, "Verified")[-1]["holds"] is True
        for ctx in ("c1", "c2", "c3"):
            wait_virtual_host(sb, ctx, HOST, PORT, lambda t: '"httpStatus": 503' not in t,
                              what="the abort gone after the freeze")  # fmt: skip
        assert create_drill(sb, "frozen-new", spec).returncode == 0
        refused = _refused(sb, "frozen-new")
        assert refused["reason"] == "Frozen", refused
        assert "meshfed_drills_frozen 1.0" in drill_federator.metrics()
    finally:
        kubectl(sb.kubeconfig, HOME, "delete", "configmap", "meshfed-drills-freeze", "-n",
                NAMESPACE, check=False)  # fmt: skip


def test_halt_stops_a_running_drill_and_rolls_back(
    drill_sandbox: IstioSandbox, drill_federator: DrillFederator
) -> None:
    sb = drill_sandbox
    assert create_drill(sb, "halted", {"services": SERVICES, "ttl": "2m",
                                       "steps": [ABORT]}).returncode == 0  # fmt: skip
    wait_status(sb, "halted", lambda s: len(s.get("applied") or []) == 3, what="step applied")
    kubectl(sb.kubeconfig, HOME, "patch", "drill", "halted", "-n", NAMESPACE, "--type=merge",
            "-p", '{"spec": {"halt": true}}')  # fmt: skip
    status = wait_status(sb, "halted", terminal, what="a terminal phase after the halt")
    assert status["phase"] == "Aborted" and status["reason"] == "Halted", status
    assert events(status, "Verified")[-1]["holds"] is True
    for ctx in ("c1", "c2", "c3"):
        wait_virtual_host(sb, ctx, HOST, PORT, lambda t: "abort=503" not in t,
                          what="the abort gone after the halt")  # fmt: skip

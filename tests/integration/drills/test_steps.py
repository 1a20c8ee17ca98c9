"""Each step kind as istiod serves it in every target cluster, and gone after the drill."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers.drills import (
    DrillFederator,
    create_drill,
    events,
    terminal,
    wait_status,
    wait_virtual_host,
)
from tests.helpers.istio import IstioSandbox, gateways, outbound, wait_served
from tests.integration.drills.conftest import BOTH, HOST, PORT, SERVICE

TARGETS = ("c1", "c2", "c3")
SERVICES = [{"namespace": "default", "name": SERVICE}]


def _spec(step: dict[str, Any], duration: str = "8s") -> dict[str, Any]:
    return {"services": SERVICES, "ttl": "2m", "steps": [{"name": "s0", "duration": duration,
            **step}]}  # fmt: skip


def _succeeded(sb: IstioSandbox, name: str) -> dict[str, Any]:
    status = wait_status(sb, name, terminal, what="a terminal phase", timeout=120)
    assert status["phase"] == "Succeeded", status
    verified = events(status, "Verified")
    assert verified and verified[-1]["holds"] is True, verified
    applied = events(status, "StepApplied")
    assert sorted(e["cluster"] for e in applied) == list(TARGETS)
    assert all(e["latency"] >= 0 for e in applied)
    return status


SUBSET_GATEWAYS = {
    "route-jason": {"c2": "127.0.2.1"},
    "shift-c2": {"c1": "127.0.1.1", "c2": "127.0.2.1"},
}
"""The endpoints each cluster subset of a step must select (the clusters' east-west gateways)."""


@pytest.mark.parametrize(
    ("name", "step", "during"),
    [
        pytest.param(
            "abort-503", {"abort": {"percentage": 100, "httpStatus": 503}},
            lambda text: "abort=503" in text,
            id="abort",
        ),
        pytest.param(
            "delay-7s", {"delay": {"percentage": 50, "fixedDelay": "7s"}},
            lambda text: "delay=7s" in text,
            id="delay",
        ),
        pytest.param(
            "route-jason",
            {"route": {"headers": {"end-user": {"exact": "jason"}}, "cluster": "c2"}},
            lambda text: "end-user=jason" in text and "|cluster-c2|" in text,
            id="route-header-match",
        ),
        pytest.param(
            "shift-c2", {"shift": {"destinations": [{"cluster": "c1", "weight": 80},
                                                     {"cluster": "c2", "weight": 20}]}},
            lambda text: "|cluster-c1|" in text and "|cluster-c2|" in text and ":20" in text,
            id="shift-weights",
        ),
    ],
)  # fmt: skip
def test_route_step_is_served_in_every_target_then_removed(
    drill_sandbox: IstioSandbox,
    drill_federator: DrillFederator,
    name: str,
    step: dict[str, Any],
    during: Any,
) -> None:
    sb = drill_sandbox
    out = create_drill(sb, name, _spec(step))
    assert out.returncode == 0, out.stderr
    for ctx in TARGETS:
        wait_virtual_host(sb, ctx, HOST, PORT, during, what=f"step {name} in RDS")
    for cluster, gateway in SUBSET_GATEWAYS.get(name, {}).items():
        # a subset is only as good as its endpoints: each selects that cluster's gateway
        wait_served(
            sb, "c3", f"outbound|{PORT}|cluster-{cluster}|{HOST}",
            lambda v, gw=gateway: set(gateways(v)) == {gw},
            what=f"subset cluster-{cluster} selecting {cluster}'s gateway in c3's EDS",
        )  # fmt: skip
    _succeeded(sb, name)
    for ctx in TARGETS:
        wait_virtual_host(
            sb, ctx, HOST, PORT, lambda text: not during(text), what=f"{name} gone from RDS"
        )


def test_drain_withdraws_the_cluster_from_eds_then_restores_it(
    drill_sandbox: IstioSandbox, drill_federator: DrillFederator
) -> None:
    sb = drill_sandbox
    out = create_drill(sb, "drain-c1", _spec({"drain": {"clusters": ["c1"]}}, duration="6s"))
    assert out.returncode == 0, out.stderr
    wait_served(
        sb, "c3", outbound(HOST, PORT), lambda v: gateways(v) == {"127.0.2.1": 1},
        what="c1's gateway withdrawn during the drain",
    )  # fmt: skip
    _succeeded(sb, "drain-c1")
    wait_served(
        sb, "c3", outbound(HOST, PORT), lambda v: gateways(v) == BOTH,
        what="both gateways after the drain",
    )  # fmt: skip
    metrics = drill_federator.metrics()
    assert 'meshfed_drills_total{result="Succeeded"}' in metrics
    assert "meshfed_drill_step_propagation_seconds_count" in metrics

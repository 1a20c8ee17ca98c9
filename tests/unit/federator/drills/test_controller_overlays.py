"""What the controller publishes to the reconciler for a drill in each phase: drain and
subsets while it runs, subsets only where VirtualServices are not removed yet during rollback,
nothing before the run or once it is verified."""

from __future__ import annotations

import dataclasses
from typing import Any, cast

import pytest

from federator.core.config_drills import DrillSettings
from federator.core.drills.journal import Journal, Phase, new_journal
from federator.core.model import ClusterId
from federator.drills.controller import DrillController
from federator.drills.steps import DrillSteps
from federator.metrics import FederatorMetrics
from tests.helpers.federator_builders import make_config
from tests.unit.federator.core.drills.builders import drill

C1, C2, C3 = ClusterId("c1"), ClusterId("c2"), ClusterId("c3")
DRAIN = drill({"drain": {"clusters": ["c1"]}})
SHIFT = drill({"shift": {"destinations": [{"cluster": "c1", "weight": 50},
                                          {"cluster": "c2", "weight": 50}]}})  # fmt: skip


def _controller() -> DrillController:
    metrics = FederatorMetrics()
    unused = cast(Any, None)
    steps = DrillSteps(
        config=make_config(), clients={}, reconciler=unused, world=unused, guards=unused,
        metrics=metrics, enqueue=lambda _key: None,
    )  # fmt: skip
    return DrillController(
        namespace="meshfed-system", home=lambda: None, steps=steps, leading=lambda: True,
        metrics=metrics, settings=DrillSettings(enabled=True),
    )  # fmt: skip


def _journal(phase: Phase, step: int = 0) -> Journal:
    return dataclasses.replace(new_journal("drill-1", (C1, C2, C3)), phase=phase, step=step)


@pytest.mark.parametrize(
    "phase",
    [
        pytest.param(Phase.PENDING, id="pending"),
        pytest.param(Phase.CHECKING, id="checking"),
        pytest.param(Phase.VERIFYING, id="verifying"),
        pytest.param(Phase.SUCCEEDED, id="succeeded"),
    ],
)
def test_no_overlay_outside_the_run(phase: Phase) -> None:
    ctl = _controller()
    ctl._running["drill-1"] = (DRAIN, _journal(phase))
    assert ctl.overlays() == ()


def test_running_drain_publishes_the_drained_clusters() -> None:
    ctl = _controller()
    ctl._running["drill-1"] = (DRAIN, _journal(Phase.RUNNING))
    (overlay,) = ctl.overlays()
    assert overlay.targets == {C1, C2, C3}
    assert set(overlay.drained.values()) == {frozenset({C1})}


def test_rollback_keeps_subsets_only_where_virtual_services_remain() -> None:
    ctl = _controller()
    ctl._running["drill-1"] = (SHIFT, _journal(Phase.ROLLING_BACK))
    ctl._vs_removed["drill-1"] = {C1, C2}
    (overlay,) = ctl.overlays()
    assert overlay.targets == {C3} and not overlay.drained
    ctl._vs_removed["drill-1"].add(C3)
    assert ctl.overlays() == ()

"""The gateway prober's pure state machine: threshold, recovery after one success, unknown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from federator.core.probing import GatewayHealth, GatewayState, after_probe, unprobed

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def run(results: list[str | None], threshold: int = 3) -> list[GatewayHealth]:
    health, out = GatewayHealth(), []
    for i, error in enumerate(results):
        health = after_probe(
            health,
            address="127.0.2.1:15443",
            error=error,
            threshold=threshold,
            now=T0 + timedelta(seconds=3 * i),
        )
        out.append(health)
    return out


@pytest.mark.parametrize(
    ("results", "states"),
    [
        pytest.param([None], ["up"], id="answers"),
        pytest.param(["refused"] * 2, ["up", "up"], id="below-threshold-still-up"),
        pytest.param(["refused"] * 3, ["up", "up", "down"], id="threshold-reached"),
        pytest.param(
            ["refused"] * 3 + [None], ["up", "up", "down", "up"], id="one-success-recovers"
        ),
        pytest.param(["x", "x", None, "x", "x"], ["up"] * 5, id="a-success-resets-the-count"),
    ],
)
def test_threshold_and_recovery(results: list[str | None], states: list[str]) -> None:
    assert [h.state.value for h in run(results)] == states


def test_since_marks_the_last_change() -> None:
    history = run(["x", "x", "x", "x", None])
    assert history[2].since == history[3].since == T0 + timedelta(seconds=6)
    assert history[4].since == T0 + timedelta(seconds=12)
    assert history[3].failures == 4 and history[3].error == "x"
    assert not history[3].usable and history[4].usable


def test_no_address_is_unknown_and_usable() -> None:
    down = run(["x"] * 3)[-1]
    unknown = unprobed(down, now=T0)
    assert unknown.state is GatewayState.UNKNOWN and unknown.usable and unknown.address == ""

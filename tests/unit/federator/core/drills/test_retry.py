"""When a failed drill action is tried again and when it ends the run."""

from __future__ import annotations

import pytest

from federator.core.drills.journal import Action, ActionKind
from federator.core.drills.retry import Failing, after_failure, gave_up

APPLY_1 = Action(ActionKind.APPLY_STEP, step=1)
APPLY_2 = Action(ActionKind.APPLY_STEP, step=2)
SNAPSHOT = Action(ActionKind.START_STEP, step=0)


@pytest.mark.parametrize(
    ("previous", "action", "retryable", "now", "expected", "again"),
    [
        pytest.param(None, APPLY_1, True, 100.0, Failing(ActionKind.APPLY_STEP, 1, 100.0, 1),
                     True, id="first-retryable-failure-is-retried"),
        pytest.param(None, APPLY_1, False, 100.0, Failing(ActionKind.APPLY_STEP, 1, 100.0, 1),
                     False, id="permanent-failure-ends-at-once"),
        pytest.param(Failing(ActionKind.APPLY_STEP, 1, 100.0, 3), APPLY_1, True, 120.0,
                     Failing(ActionKind.APPLY_STEP, 1, 100.0, 4), True,
                     id="same-action-within-budget-keeps-its-start"),
        pytest.param(Failing(ActionKind.APPLY_STEP, 1, 100.0, 9), APPLY_1, True, 130.0,
                     Failing(ActionKind.APPLY_STEP, 1, 100.0, 10), False,
                     id="same-action-past-budget-gives-up"),
        pytest.param(Failing(ActionKind.APPLY_STEP, 1, 100.0, 9), APPLY_2, True, 130.0,
                     Failing(ActionKind.APPLY_STEP, 2, 130.0, 1), True,
                     id="next-step-is-a-new-outage"),
        pytest.param(Failing(ActionKind.APPLY_STEP, 0, 100.0, 2), SNAPSHOT, True, 101.0,
                     Failing(ActionKind.START_STEP, 0, 101.0, 1), True,
                     id="other-kind-same-step-is-a-new-outage"),
        pytest.param(Failing(ActionKind.APPLY_STEP, 1, 100.0, 2), APPLY_1, False, 101.0,
                     Failing(ActionKind.APPLY_STEP, 1, 100.0, 3), False,
                     id="permanent-after-retries-ends"),
    ],
)  # fmt: skip
def test_after_failure(
    previous: Failing | None,
    action: Action,
    retryable: bool,
    now: float,
    expected: Failing,
    again: bool,
) -> None:
    assert after_failure(previous, action, retryable=retryable, now=now, budget_s=30.0) == (
        expected,
        again,
    )


def test_zero_budget_never_retries() -> None:
    _, again = after_failure(None, APPLY_1, retryable=True, now=5.0, budget_s=0.0)
    assert again is False


@pytest.mark.parametrize(
    ("failing", "now", "expected"),
    [
        pytest.param(Failing(ActionKind.APPLY_STEP, 1, 100.0, 1), 100.0, "", id="no-retries"),
        pytest.param(Failing(ActionKind.APPLY_STEP, 1, 100.0, 16), 131.4,
                     " (gave up after 16 attempts in 31s)", id="after-retries"),
    ],
)  # fmt: skip
def test_gave_up_message(failing: Failing, now: float, expected: str) -> None:
    assert gave_up(failing, now) == expected

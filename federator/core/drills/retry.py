"""Whether a drill action that failed is tried again or ends the run (``Exit(Error)``).

Why: a member apiserver that restarts, a dropped connection or a 429/503 lasts seconds, and
ending a long drill for it wastes the run and rolls back a change that was fine. So a
*retryable* failure of the same action is tried again while the failures last at most
``budget_s`` seconds; a permanent failure (the apiserver refused the object) ends the run at
once, as does a retryable one that outlasts the budget. While an action is retried the
journal still decides every other action: guards are evaluated when due, and halt, freeze
and the TTL end the run as always, so retrying never keeps a drill past its limits.
Rollback and verification actions are not judged here: they are retried until they succeed
(the controller's rule), because giving up would leave the drill's objects in place.
"""

from __future__ import annotations

from dataclasses import dataclass

from federator.core.drills.journal import Action, ActionKind


@dataclass(frozen=True, slots=True)
class Failing:
    """An action that has failed ``attempts`` times in a row, the first at ``since``."""

    kind: ActionKind
    step: int | None
    since: float
    attempts: int


def after_failure(
    previous: Failing | None, action: Action, *, retryable: bool, now: float, budget_s: float
) -> tuple[Failing, bool]:
    """The failure record after ``action`` failed at ``now``, and whether to try it again.

    A different action (or step) than ``previous`` starts a new record: its failures are a
    new outage. ``budget_s`` 0 never retries.
    """
    same = previous is not None and (previous.kind, previous.step) == (action.kind, action.step)
    if previous is not None and same:
        failing = Failing(action.kind, action.step, previous.since, previous.attempts + 1)
    else:
        failing = Failing(action.kind, action.step, now, 1)
    return failing, retryable and now - failing.since < budget_s


def gave_up(failing: Failing, now: float) -> str:
    """What the ``Exit(Error)`` message adds when retries were tried first ('' if not)."""
    if failing.attempts <= 1:
        return ""
    return f" (gave up after {failing.attempts} attempts in {now - failing.since:.0f}s)"

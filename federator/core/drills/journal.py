"""A drill run as a pure state machine, persisted as the Drill resource's status (its journal).

The controller never keeps drill state of its own: it asks ``next_action(journal, spec,
now=..., frozen=...)`` what to do, does it (the I/O), and records what happened with
``record(journal, spec, event)``, which returns the next journal; that is written to the
status before anything else is done. A new leader reads the journal and, through
``recover``, turns any run that was in progress into a rollback. Every exit - completion,
guard breach, halt, freeze, TTL, a failed precondition, an apply error, a crash - goes through
RollingBack then Verifying, and only a verification decides the terminal phase:

    Pending -> CheckingPreconditions -> Running(step 0..n-1) -> RollingBack -> Verifying
      -> Succeeded | Aborted | Refused  (rollback verified)
      -> Failed                         (still a mismatch after MAX_VERIFY_ATTEMPTS rollbacks)

A terminal journal never changes again; an event that does not fit the current phase (a
stale or repeated one) is ignored, so ``record`` returns the same object and the caller
skips the write. Stored guard evaluations are bounded (``MAX_EVALUATIONS``): the first one of
each guard and the breaching one are kept, then the most recent.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from federator.core.drills.spec import DrillSpec, Guard
from federator.core.model import ClusterId

SCHEMA_VERSION = 1
MAX_EVALUATIONS = 60
MAX_VERIFY_ATTEMPTS = 3
MAX_MESSAGE = 2000


class Phase(enum.StrEnum):
    PENDING = "Pending"
    CHECKING = "CheckingPreconditions"
    RUNNING = "Running"
    ROLLING_BACK = "RollingBack"
    VERIFYING = "Verifying"
    SUCCEEDED = "Succeeded"
    ABORTED = "Aborted"
    REFUSED = "Refused"
    FAILED = "Failed"


TERMINAL = frozenset({Phase.SUCCEEDED, Phase.ABORTED, Phase.REFUSED, Phase.FAILED})


class ExitReason(enum.StrEnum):
    COMPLETED = "Completed"
    BREACH = "GuardBreached"
    HALT = "Halted"
    FREEZE = "Frozen"
    TTL = "TTLExpired"
    CRASH = "LeaderLost"
    REFUSED = "PreconditionFailed"
    ERROR = "Error"


class EventType(enum.StrEnum):
    STARTED = "Started"
    PRECONDITIONS_PASSED = "PreconditionsPassed"
    STEP_STARTED = "StepStarted"
    STEP_APPLIED = "StepApplied"
    """``cluster`` shows step ``step`` in istiod's config; ``latency`` since the step started."""
    GUARD_EVALUATED = "GuardEvaluated"
    """``holds``: the expression returned a non-empty result; None: it could not be evaluated
    (``message`` says why), which neither advances nor resets the guard's ``for`` window."""
    EXIT = "Exit"
    """The run ends (``reason``); rollback starts. Recorded by the controller, or by ``record``
    itself for a breach."""
    ROLLBACK_APPLIED = "RollbackApplied"
    VERIFIED = "Verified"
    """``holds``: the live objects equal the expected ones; ``message``: the mismatches."""


@dataclass(frozen=True, slots=True)
class Event:
    type: EventType
    at: float
    """Seconds since the epoch (kept to the millisecond)."""
    step: int | None = None
    cluster: ClusterId | None = None
    latency: float | None = None
    guard: str | None = None
    value: float | None = None
    holds: bool | None = None
    reason: ExitReason | None = None
    message: str = ""


@dataclass(frozen=True, slots=True)
class Journal:
    drill: str
    targets: tuple[ClusterId, ...]
    phase: Phase = Phase.PENDING
    reason: ExitReason | None = None
    started_at: float | None = None
    step: int = -1
    """The current step's index; -1 before the first."""
    step_started_at: float | None = None
    """When step ``step`` was issued."""
    step_ready_at: float | None = None
    """When every target had applied it (its duration counts from here)."""
    applied: tuple[ClusterId, ...] = ()
    rolled_back: tuple[ClusterId, ...] = ()
    verify_attempts: int = 0
    last_evaluated: Mapping[str, float] = field(default_factory=dict)
    holding_since: Mapping[str, float] = field(default_factory=dict)
    events: tuple[Event, ...] = ()
    """The timeline, without guard evaluations (bounded by steps x targets and attempts)."""
    evaluations: tuple[Event, ...] = ()
    evaluations_total: int = 0
    steady_state_violations: int = 0
    version: int = SCHEMA_VERSION

    @property
    def terminal(self) -> bool:
        return self.phase in TERMINAL


def new_journal(drill: str, targets: tuple[ClusterId, ...]) -> Journal:
    return Journal(drill=drill, targets=tuple(sorted(targets)))


class ActionKind(enum.StrEnum):
    START = "Start"
    """Record ``Started``."""
    CHECK_PRECONDITIONS = "CheckPreconditions"
    """Evaluate freeze/staleness/notWhen; record ``PreconditionsPassed`` or Exit(refused)."""
    START_STEP = "StartStep"
    """Record ``StepStarted(step)``."""
    APPLY_STEP = "ApplyStep"
    """Apply step ``step`` in ``clusters``; record ``StepApplied`` per cluster."""
    EVALUATE_GUARDS = "EvaluateGuards"
    """Evaluate ``guards``; record a ``GuardEvaluated`` for each."""
    EXIT = "Exit"
    """Record ``Exit(reason)``."""
    ROLL_BACK = "RollBack"
    """Remove drill objects and overlays in ``clusters``; record ``RollbackApplied`` per cluster."""
    VERIFY = "Verify"
    """Compare live objects with the expected ones; record ``Verified``."""
    WAIT = "Wait"
    """Nothing to do before ``until`` (or an external change: halt, freeze)."""
    DONE = "Done"


@dataclass(frozen=True, slots=True)
class Action:
    kind: ActionKind
    step: int | None = None
    clusters: tuple[ClusterId, ...] = ()
    guards: tuple[str, ...] = ()
    reason: ExitReason | None = None
    until: float | None = None


def _guards(spec: DrillSpec) -> tuple[Guard, ...]:
    return spec.abort_when + spec.hypothesis.steady_state


def next_action(journal: Journal, spec: DrillSpec, *, now: float, frozen: bool) -> Action:
    """What the controller must do next. Exits come first: a halt (``spec.halt``), a freeze
    or the TTL end the run from any phase before rollback."""
    phase = journal.phase
    if journal.terminal:
        return Action(ActionKind.DONE)
    if phase is Phase.ROLLING_BACK:
        missing = tuple(c for c in journal.targets if c not in journal.rolled_back)
        return Action(ActionKind.ROLL_BACK, clusters=missing)
    if phase is Phase.VERIFYING:
        return Action(ActionKind.VERIFY, clusters=journal.targets)
    if spec.halt:
        return Action(ActionKind.EXIT, reason=ExitReason.HALT)
    if frozen:
        return Action(ActionKind.EXIT, reason=ExitReason.FREEZE)
    if phase is Phase.PENDING:
        return Action(ActionKind.START)
    deadline = (journal.started_at or now) + spec.ttl_seconds
    if now >= deadline:
        return Action(ActionKind.EXIT, reason=ExitReason.TTL)
    if phase is Phase.CHECKING:
        return Action(ActionKind.CHECK_PRECONDITIONS)
    return _running(journal, spec, now=now, deadline=deadline)


def _running(journal: Journal, spec: DrillSpec, *, now: float, deadline: float) -> Action:
    if journal.step < 0:
        return Action(ActionKind.START_STEP, step=0)
    due = {
        g.name: journal.last_evaluated.get(g.name, -math.inf) + g.interval_seconds
        for g in _guards(spec)
    }
    ready = tuple(name for name, at in due.items() if at <= now)
    if ready:
        return Action(ActionKind.EVALUATE_GUARDS, guards=ready)
    missing = tuple(c for c in journal.targets if c not in journal.applied)
    if missing:
        return Action(ActionKind.APPLY_STEP, step=journal.step, clusters=missing)
    step_end = (journal.step_ready_at or now) + spec.steps[journal.step].duration_seconds
    if now >= step_end:
        if journal.step + 1 < len(spec.steps):
            return Action(ActionKind.START_STEP, step=journal.step + 1)
        return Action(ActionKind.EXIT, reason=ExitReason.COMPLETED)
    return Action(ActionKind.WAIT, until=min([step_end, deadline, *due.values()]))


def record(journal: Journal, spec: DrillSpec, event: Event) -> Journal:
    """The journal after ``event``; the same object if the event does not apply now."""
    if journal.terminal:
        return journal
    event = dataclasses.replace(event, at=round(event.at, 3), message=event.message[:MAX_MESSAGE])
    handler = _HANDLERS.get((journal.phase, event.type))
    if event.type is EventType.EXIT and journal.phase not in (Phase.ROLLING_BACK, Phase.VERIFYING):
        return _exit(journal, event)
    if handler is None:
        return journal
    return handler(journal, spec, event)


def recover(journal: Journal, spec: DrillSpec, *, now: float) -> Journal:
    """A journal found by a new leader: any run in progress is rolled back (``LeaderLost``).
    RollingBack and Verifying restart the rollback (it is idempotent); Pending stays."""
    if journal.terminal or journal.phase is Phase.PENDING:
        return journal
    message = f"a new leader found the drill in phase {journal.phase.value}"
    crash = Event(EventType.EXIT, at=round(now, 3), reason=ExitReason.CRASH, message=message)
    reason = journal.reason or ExitReason.CRASH
    return _exit(dataclasses.replace(journal, reason=reason), crash, keep_reason=True)


def _append(journal: Journal, event: Event, **changes: Any) -> Journal:
    return dataclasses.replace(journal, events=(*journal.events, event), **changes)


def _exit(journal: Journal, event: Event, *, keep_reason: bool = False) -> Journal:
    reason = journal.reason if keep_reason else event.reason or ExitReason.ERROR
    return _append(journal, event, phase=_rollback(journal), reason=reason, rolled_back=())


def _rollback(journal: Journal) -> Phase:
    """RollingBack; straight to Verifying when there is no target to roll back in."""
    return Phase.ROLLING_BACK if journal.targets else Phase.VERIFYING


def _started(journal: Journal, spec: DrillSpec, event: Event) -> Journal:
    return _append(journal, event, phase=Phase.CHECKING, started_at=event.at)


def _passed(journal: Journal, spec: DrillSpec, event: Event) -> Journal:
    return _append(journal, event, phase=Phase.RUNNING)


def _step_started(journal: Journal, spec: DrillSpec, event: Event) -> Journal:
    if event.step != journal.step + 1 or event.step >= len(spec.steps):
        return journal
    ready = None if journal.targets else event.at  # nothing to apply: ready at once
    return _append(
        journal, event, step=event.step, step_started_at=event.at, step_ready_at=ready, applied=()
    )


def _step_applied(journal: Journal, spec: DrillSpec, event: Event) -> Journal:
    cluster = event.cluster
    if event.step != journal.step or cluster not in journal.targets or cluster in journal.applied:
        return journal
    applied = (*journal.applied, cluster)
    ready = event.at if len(applied) == len(journal.targets) else None
    return _append(journal, event, applied=applied, step_ready_at=ready)


def _evaluated(journal: Journal, spec: DrillSpec, event: Event) -> Journal:
    guard = next((g for g in _guards(spec) if g.name == event.guard), None)
    if guard is None or journal.step < 0:
        return journal
    last = {**journal.last_evaluated, guard.name: event.at}
    holding = dict(journal.holding_since)
    violations = journal.steady_state_violations
    breach = False
    if event.holds is None:
        pass  # not evaluated (the store did not answer): the for-window neither grows nor resets
    elif guard in spec.abort_when:
        if event.holds:
            since = holding.setdefault(guard.name, event.at)
            breach = event.at - since >= guard.for_seconds
        else:
            holding.pop(guard.name, None)
    elif event.holds:
        violations += 1
    out = dataclasses.replace(
        journal,
        last_evaluated=last,
        holding_since=holding,
        steady_state_violations=violations,
        evaluations=_bounded(journal.evaluations, event, pinned=breach),
        evaluations_total=journal.evaluations_total + 1,
    )
    if not breach:
        return out
    since = holding[guard.name]
    message = (
        f"{guard.name} held from {_clock(since)} to {_clock(event.at)} "
        f"({event.at - since:.3f}s; for >= {guard.for_seconds:g}s), "
        f"last value {event.value}: {guard.expr}"
    )
    exit_event = dataclasses.replace(
        event, type=EventType.EXIT, reason=ExitReason.BREACH, message=message
    )
    return _exit(out, exit_event)


def _bounded(kept: tuple[Event, ...], event: Event, *, pinned: bool) -> tuple[Event, ...]:
    """Append ``event``; past ``MAX_EVALUATIONS`` drop the oldest evaluation that is neither
    the first of its guard nor a breach."""
    out = [*kept, event]
    if len(out) <= MAX_EVALUATIONS:
        return tuple(out)
    firsts: set[int] = set()
    seen: set[str | None] = set()
    for i, e in enumerate(out):
        if e.guard not in seen:
            seen.add(e.guard)
            firsts.add(i)
    for i in range(len(out) - 1 if pinned else len(out)):
        if i not in firsts:
            del out[i]
            break
    return tuple(out)


def _rolled_back(journal: Journal, spec: DrillSpec, event: Event) -> Journal:
    cluster = event.cluster
    if cluster not in journal.targets or cluster in journal.rolled_back:
        return journal
    done = (*journal.rolled_back, cluster)
    phase = Phase.VERIFYING if len(done) == len(journal.targets) else Phase.ROLLING_BACK
    return _append(journal, event, rolled_back=done, phase=phase)


def _verified(journal: Journal, spec: DrillSpec, event: Event) -> Journal:
    attempts = journal.verify_attempts + 1
    if not event.holds:
        if attempts >= MAX_VERIFY_ATTEMPTS:
            return _append(journal, event, phase=Phase.FAILED, verify_attempts=attempts)
        return _append(
            journal, event, phase=_rollback(journal), rolled_back=(), verify_attempts=attempts
        )
    return _append(journal, event, phase=_terminal(journal), verify_attempts=attempts)


def _terminal(journal: Journal) -> Phase:
    if journal.reason is ExitReason.COMPLETED:
        return Phase.SUCCEEDED
    before_steps = journal.step < 0
    if before_steps and journal.reason in (ExitReason.REFUSED, ExitReason.FREEZE, ExitReason.HALT):
        return Phase.REFUSED
    return Phase.ABORTED


_HANDLERS = {
    (Phase.PENDING, EventType.STARTED): _started,
    (Phase.CHECKING, EventType.PRECONDITIONS_PASSED): _passed,
    (Phase.RUNNING, EventType.STEP_STARTED): _step_started,
    (Phase.RUNNING, EventType.STEP_APPLIED): _step_applied,
    (Phase.RUNNING, EventType.GUARD_EVALUATED): _evaluated,
    (Phase.ROLLING_BACK, EventType.ROLLBACK_APPLIED): _rolled_back,
    (Phase.VERIFYING, EventType.VERIFIED): _verified,
}


class Verdict(enum.StrEnum):
    CONFIRMED = "Confirmed"
    """Every step ran, no guard breached, no steady-state condition held; rollback verified."""
    REFUTED = "Refuted"
    """A guard breached or a steady-state condition held: the mesh did not take it."""
    INCONCLUSIVE = "Inconclusive"
    """The run ended otherwise (halt, freeze, TTL, crash, refusal, error) or is not over."""


def verdict(journal: Journal) -> Verdict:
    """The verdict against the hypothesis (see ``spec.Hypothesis``)."""
    if journal.reason is ExitReason.BREACH or journal.steady_state_violations:
        return Verdict.REFUTED
    if journal.phase is Phase.SUCCEEDED:
        return Verdict.CONFIRMED
    return Verdict.INCONCLUSIVE


def _clock(at: float) -> str:
    """A time in messages as people read it (UTC, milliseconds), not seconds since the epoch."""
    return datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S.%f")[:-3] + "Z"

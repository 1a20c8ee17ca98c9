"""The drill journal: every exit path ends in rollback then verification, table-driven;
restart after a crash in every phase; bounded evaluations; status round trip; properties."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federator.core.drills.journal import (
    MAX_EVALUATIONS,
    ActionKind,
    Event,
    EventType,
    ExitReason,
    Journal,
    Phase,
    Verdict,
    new_journal,
    next_action,
    record,
    recover,
    verdict,
)
from federator.core.drills.journal_codec import from_status, load_status, to_status
from federator.core.drills.parse import parse_drill
from federator.core.drills.spec import DrillSpec
from tests.unit.federator.core.drills.builders import base_spec, document
from tests.unit.federator.core.drills.journal_sim import T0, TARGETS, Sim

ABORT = {"abort": {"percentage": 100, "httpStatus": 500}}


def two_steps(**extra: Any) -> DrillSpec:
    doc = document(base_spec(ABORT, **extra))
    doc["spec"]["steps"].append(
        {"name": "step-two", "duration": "2m", "drain": {"regions": ["region-a"]}}
    )
    return parse_drill(doc)


RUNNING = (
    Event(EventType.STARTED, T0),
    Event(EventType.PRECONDITIONS_PASSED, T0),
    Event(EventType.STEP_STARTED, T0, step=0),
)
"""The events that take a new journal into step 0."""


def replay(spec: DrillSpec, *events: Event) -> Journal:
    journal = new_journal(spec.name, TARGETS)
    for event in (*RUNNING, *events):
        journal = record(journal, spec, event)
    return journal


def assert_rolled_back_then_verified(journal: Journal) -> None:
    types = [e.type for e in journal.events]
    exit_at = types.index(EventType.EXIT)
    after = journal.events[exit_at:]
    rolled = [e.cluster for e in after if e.type is EventType.ROLLBACK_APPLIED]
    assert set(rolled) >= set(TARGETS), "every target is rolled back after the exit"
    assert types[-1] is EventType.VERIFIED
    last_rollback = max(i for i, t in enumerate(types) if t is EventType.ROLLBACK_APPLIED)
    assert last_rollback > exit_at
    applied_after_exit = [
        e for e in journal.events[exit_at:] if e.type in (EventType.STEP_APPLIED,
                                                          EventType.STEP_STARTED)
    ]  # fmt: skip
    assert applied_after_exit == []


CASES = [
    pytest.param({}, Phase.SUCCEEDED, ExitReason.COMPLETED, Verdict.CONFIRMED, id="completed"),
    pytest.param({"holds": lambda g, t: t >= T0 + 20}, Phase.ABORTED, ExitReason.BREACH,
                 Verdict.REFUTED, id="guard-breach"),
    pytest.param({"halt_at": T0 + 30}, Phase.ABORTED, ExitReason.HALT, Verdict.INCONCLUSIVE,
                 id="halt-during-step-one"),
    pytest.param({"freeze_at": T0 + 100}, Phase.ABORTED, ExitReason.FREEZE,
                 Verdict.INCONCLUSIVE, id="freeze-during-step-two"),
    pytest.param({"freeze_at": T0}, Phase.REFUSED, ExitReason.FREEZE, Verdict.INCONCLUSIVE,
                 id="frozen-before-start"),
    pytest.param({"halt_at": T0}, Phase.REFUSED, ExitReason.HALT, Verdict.INCONCLUSIVE,
                 id="halted-before-start"),
    pytest.param({"refuse": True}, Phase.REFUSED, ExitReason.REFUSED, Verdict.INCONCLUSIVE,
                 id="precondition-holds"),
    pytest.param({"stuck": frozenset(TARGETS[2:])}, Phase.ABORTED, ExitReason.TTL,
                 Verdict.INCONCLUSIVE, id="ttl-while-a-cluster-never-applies"),
    pytest.param({"error_on": TARGETS[1]}, Phase.ABORTED, ExitReason.ERROR,
                 Verdict.INCONCLUSIVE, id="permanent-apply-error"),
    pytest.param({"verify_failures": 1}, Phase.SUCCEEDED, ExitReason.COMPLETED,
                 Verdict.CONFIRMED, id="verification-retried-once"),
    pytest.param({"verify_failures": 3}, Phase.FAILED, ExitReason.COMPLETED,
                 Verdict.INCONCLUSIVE, id="verification-mismatch-stays"),
    pytest.param({"crash_in": frozenset({Phase.CHECKING})}, Phase.ABORTED, ExitReason.CRASH,
                 Verdict.INCONCLUSIVE, id="crash-checking"),
    pytest.param({"crash_in": frozenset({Phase.RUNNING})}, Phase.ABORTED, ExitReason.CRASH,
                 Verdict.INCONCLUSIVE, id="crash-running"),
    pytest.param({"crash_in": frozenset({Phase.ROLLING_BACK})}, Phase.SUCCEEDED,
                 ExitReason.COMPLETED, Verdict.CONFIRMED, id="crash-rolling-back"),
    pytest.param({"crash_in": frozenset({Phase.VERIFYING})}, Phase.SUCCEEDED,
                 ExitReason.COMPLETED, Verdict.CONFIRMED, id="crash-verifying"),
    pytest.param({"crash_in": frozenset({Phase.PENDING})}, Phase.SUCCEEDED, ExitReason.COMPLETED,
                 Verdict.CONFIRMED, id="crash-pending-starts-normally"),
    pytest.param({"crash_in": frozenset({Phase.RUNNING, Phase.ROLLING_BACK,
                                         Phase.VERIFYING})},
                 Phase.ABORTED, ExitReason.CRASH, Verdict.INCONCLUSIVE, id="crash-thrice"),
]  # fmt: skip


@pytest.mark.parametrize(("sim", "phase", "reason", "result"), CASES)
def test_every_exit_path_rolls_back_and_verifies(
    sim: dict[str, Any], phase: Phase, reason: ExitReason, result: Verdict
) -> None:
    journal = Sim(two_steps(), roundtrip=True, **sim).run()
    assert (journal.phase, journal.reason) == (phase, reason)
    assert verdict(journal) is result
    assert_rolled_back_then_verified(journal)


def test_completed_timeline() -> None:
    journal = Sim(two_steps()).run()
    types = [e.type for e in journal.events]
    assert types[:3] == [EventType.STARTED, EventType.PRECONDITIONS_PASSED, EventType.STEP_STARTED]
    assert types.count(EventType.STEP_APPLIED) == 6
    assert types.count(EventType.STEP_STARTED) == 2
    applied = [e for e in journal.events if e.type is EventType.STEP_APPLIED]
    assert {e.latency for e in applied} == {0.25}
    # step two starts a full step duration after step one was applied everywhere
    step_two = next(e for e in journal.events if e.type is EventType.STEP_STARTED and e.step == 1)
    assert step_two.at >= applied[2].at + 60
    assert journal.evaluations_total >= 180, "a 1s guard over 3 minutes"
    assert len(journal.evaluations) <= MAX_EVALUATIONS


def test_breach_waits_for_the_for_duration_and_says_so() -> None:
    journal = Sim(two_steps(), holds=lambda g, t: t >= T0 + 20).run()
    breach = next(e for e in journal.events if e.reason is ExitReason.BREACH)
    assert breach.guard == "errors"
    assert T0 + 50 <= breach.at < T0 + 52
    assert "errors held from" in breach.message and "for >= 30s" in breach.message
    since = next(e.at for e in journal.evaluations if e.holds)
    clock = datetime.fromtimestamp(since, UTC).strftime("%H:%M:%S.%f")[:-3] + "Z"
    assert f"held from {clock} to " in breach.message, "times as a clock, not epoch seconds"
    assert f"({breach.at - since:.3f}s; for >= 30s)" in breach.message
    assert breach.value == 0.2
    kept = journal.evaluations
    assert kept[-1].at == breach.at and kept[-1].holds, "the breaching evaluation is kept"
    assert kept[0].guard == "errors" and kept[0].at < T0 + 2, "the first evaluation is kept"


def test_a_flapping_guard_restarts_the_for_window() -> None:
    flapping = Sim(two_steps(), holds=lambda g, t: int(t - T0) % 40 < 25)
    journal = flapping.run()
    assert journal.reason is ExitReason.COMPLETED


def test_steady_state_violation_refutes_without_aborting() -> None:
    spec = two_steps(hypothesis={"steadyState": [{"name": "slow", "expr": "vector(1)"}]})
    journal = Sim(spec, holds=lambda g, t: g == "slow" and t > T0 + 100).run()
    assert journal.phase is Phase.SUCCEEDED
    assert journal.steady_state_violations > 0
    assert verdict(journal) is Verdict.REFUTED


def test_bounded_evaluations_keep_first_per_guard() -> None:
    spec = two_steps(hypothesis={"steadyState": [{"name": "slow", "expr": "vector(1)"}]})
    journal = Sim(spec).run()
    assert len(journal.evaluations) == MAX_EVALUATIONS
    firsts = {g: next(e for e in journal.evaluations if e.guard == g) for g in ("errors", "slow")}
    assert all(e.at < T0 + 2 for e in firsts.values())
    assert journal.evaluations[-1].at > T0 + 170


def test_wait_until_the_next_deadline() -> None:
    spec = two_steps()
    journal = replay(
        spec,
        *(Event(EventType.STEP_APPLIED, T0 + 1, step=0, cluster=c) for c in TARGETS),
        Event(EventType.GUARD_EVALUATED, T0 + 1, guard="errors", holds=False),
    )
    action = next_action(journal, spec, now=T0 + 1.5, frozen=False)
    assert (action.kind, action.until) == (ActionKind.WAIT, T0 + 2)
    assert next_action(journal, spec, now=T0 + 2, frozen=False).guards == ("errors",)


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(Event(EventType.STEP_STARTED, T0, step=5), id="step-out-of-order"),
        pytest.param(
            Event(EventType.STEP_APPLIED, T0, step=1, cluster=TARGETS[0]),
            id="applied-for-another-step",
        ),
        pytest.param(
            Event(EventType.STEP_APPLIED, T0, step=0, cluster="c9"),  # type: ignore[arg-type]
            id="applied-in-unknown-cluster",
        ),
        pytest.param(
            Event(EventType.GUARD_EVALUATED, T0, guard="nope", holds=True), id="unknown-guard"
        ),
        pytest.param(Event(EventType.VERIFIED, T0, holds=True), id="verified-while-running"),
        pytest.param(
            Event(EventType.ROLLBACK_APPLIED, T0, cluster=TARGETS[0]), id="rollback-while-running"
        ),
    ],
)
def test_events_that_do_not_fit_are_ignored(event: Event) -> None:
    spec = two_steps()
    journal = replay(spec)
    assert record(journal, spec, event) is journal


def test_terminal_journal_never_changes() -> None:
    spec = two_steps()
    done = Sim(spec).run()
    for event in (
        Event(EventType.EXIT, T0, reason=ExitReason.HALT),
        Event(EventType.STARTED, T0),
        Event(EventType.VERIFIED, T0, holds=False),
    ):
        assert record(done, spec, event) is done
    assert recover(done, spec, now=T0) is done
    assert next_action(done, spec, now=T0, frozen=True).kind is ActionKind.DONE


def test_status_round_trip_and_rfc3339_times() -> None:
    journal = Sim(two_steps(), holds=lambda g, t: t >= T0 + 20).run()
    status = to_status(journal)
    assert status["version"] == 1
    assert status["phase"] == "Aborted"
    assert status["startedAt"] == "2023-11-14T22:13:20.000Z"
    assert from_status(journal.drill, status) == journal


@pytest.mark.parametrize(
    ("status", "phase"),
    [
        pytest.param(None, Phase.PENDING, id="no-status"),
        pytest.param({}, Phase.PENDING, id="empty-status"),
        pytest.param({"version": 99, "phase": "Running"}, Phase.ROLLING_BACK, id="newer-layout"),
        pytest.param({"version": 1, "phase": "Dancing"}, Phase.ROLLING_BACK, id="unknown-phase"),
        pytest.param(
            {"version": 1, "phase": "Running", "events": [{"type": "Started"}]},
            Phase.ROLLING_BACK,
            id="event-without-time",
        ),
    ],
)
def test_load_status_rolls_back_what_it_cannot_read(
    status: dict[str, Any] | None, phase: Phase
) -> None:
    journal = load_status("d", status, targets=TARGETS, now=T0)
    assert journal.phase is phase
    if phase is Phase.ROLLING_BACK:
        assert journal.reason is ExitReason.CRASH
        assert "unreadable status" in journal.events[0].message


DISTURBANCE = st.fixed_dictionaries(
    {},
    optional={
        "holds_from": st.floats(0, 400),
        "halt_at": st.floats(0, 400),
        "freeze_at": st.floats(0, 400),
        "refuse": st.booleans(),
        "stuck": st.sets(st.sampled_from(TARGETS), max_size=3).map(frozenset),
        "error_on": st.sampled_from(TARGETS),
        "verify_failures": st.integers(0, 4),
        "crash_in": st.sets(st.sampled_from(list(Phase)), max_size=4).map(frozenset),
    },
)


@settings(max_examples=60, deadline=None)
@given(DISTURBANCE)
def test_any_run_ends_rolled_back_and_verified(disturbance: dict[str, Any]) -> None:
    args = dict(disturbance)
    if "holds_from" in args:
        start = T0 + args.pop("holds_from")
        args["holds"] = lambda g, t: t >= start
    for key in ("halt_at", "freeze_at"):
        if key in args:
            args[key] += T0
    sim = Sim(two_steps(), **args)
    journal = sim.run()
    assert journal.terminal
    assert_rolled_back_then_verified(journal)
    verified = [e for e in journal.events if e.type is EventType.VERIFIED]
    assert verified[-1].holds is (journal.phase is not Phase.FAILED)
    writes = sim.writes
    assert record(journal, sim.spec, Event(EventType.EXIT, sim.now)) is journal
    assert sim.writes == writes


EVENTS = st.builds(
    Event,
    type=st.sampled_from(list(EventType)),
    at=st.floats(T0, T0 + 1000),
    step=st.none() | st.integers(-1, 3),
    cluster=st.none() | st.sampled_from(TARGETS),
    guard=st.none() | st.just("errors"),
    holds=st.none() | st.booleans(),
    reason=st.none() | st.sampled_from(list(ExitReason)),
)


@settings(max_examples=50, deadline=None)
@given(st.lists(EVENTS, max_size=40))
def test_random_events_then_a_controller_always_finish_with_rollback(events: list[Event]) -> None:
    spec = two_steps()
    journal = new_journal(spec.name, TARGETS)
    for event in events:
        before = journal
        journal = record(journal, spec, event)
        if before.terminal:
            assert journal is before
        assert from_status(journal.drill, to_status(journal)) == journal
    final = Sim(spec, now=T0 + 1001).run(journal)
    assert final.terminal
    if any(e.type is EventType.STEP_STARTED for e in final.events):
        assert_rolled_back_then_verified(final)


def test_a_drill_without_targets_still_times_its_steps() -> None:
    spec = two_steps()
    journal = Sim(spec).run(new_journal(spec.name, ()))
    assert journal.phase is Phase.SUCCEEDED
    step_two = next(e for e in journal.events if e.type is EventType.STEP_STARTED and e.step == 1)
    assert step_two.at == T0 + 60


def test_a_failed_evaluation_neither_advances_nor_resets_the_window() -> None:
    spec = two_steps()
    journal = replay(
        spec,
        Event(EventType.GUARD_EVALUATED, T0 + 1, guard="errors", holds=True, value=0.3),
        Event(EventType.GUARD_EVALUATED, T0 + 10, guard="errors", message="store timeout"),
    )
    assert journal.holding_since == {"errors": T0 + 1}
    assert journal.phase is Phase.RUNNING
    breach = Event(EventType.GUARD_EVALUATED, T0 + 31, guard="errors", holds=True, value=0.3)
    assert record(journal, spec, breach).reason is ExitReason.BREACH

"""A simulated controller for the journal tests: drives ``next_action`` / ``record`` with a
clock, guard outcomes, halts, freezes, failing clusters, verification results and crashes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from federator.core.drills.journal import (
    Action,
    ActionKind,
    Event,
    EventType,
    ExitReason,
    Journal,
    Phase,
    new_journal,
    next_action,
    record,
    recover,
)
from federator.core.drills.journal_codec import from_status, to_status
from federator.core.drills.spec import DrillSpec
from federator.core.model import ClusterId

TARGETS = (ClusterId("c1"), ClusterId("c2"), ClusterId("c3"))
T0 = 1_700_000_000.0


@dataclass
class Sim:
    spec: DrillSpec
    now: float = T0
    holds: Callable[[str, float], bool] = lambda guard, t: False
    halt_at: float | None = None
    freeze_at: float | None = None
    refuse: bool = False
    stuck: frozenset[ClusterId] = frozenset()
    """Clusters where applying a step never succeeds (retryable errors)."""
    error_on: ClusterId | None = None
    """A cluster where applying fails for good (Exit(Error))."""
    verify_failures: int = 0
    crash_in: frozenset[Phase] = frozenset()
    """Phases in which the federator is killed once (the journal survives, as status)."""
    roundtrip: bool = False
    """Pass every written journal through the status codec, as the real controller does."""
    crashed: set[Phase] = field(default_factory=set)
    writes: int = 0

    def _record(self, journal: Journal, event: Event) -> Journal:
        out = record(journal, self.spec, event)
        if out is not journal:
            self.writes += 1
            if self.roundtrip:
                out = from_status(out.drill, to_status(out))
        return out

    def run(self, journal: Journal | None = None, *, max_actions: int = 5000) -> Journal:
        journal = journal or new_journal(self.spec.name, TARGETS)
        for _ in range(max_actions):
            if journal.phase in self.crash_in and journal.phase not in self.crashed:
                self.crashed.add(journal.phase)
                journal = recover(from_status(journal.drill, to_status(journal)), self.spec,
                                  now=self.now)  # fmt: skip
            if self.halt_at is not None and self.now >= self.halt_at:
                self.spec = dataclasses.replace(self.spec, halt=True)
            frozen = self.freeze_at is not None and self.now >= self.freeze_at
            action = next_action(journal, self.spec, now=self.now, frozen=frozen)
            if action.kind is ActionKind.DONE:
                return journal
            journal = self._do(journal, action)
        raise AssertionError(f"no terminal phase after {max_actions} actions: {journal.phase}")

    def _do(self, journal: Journal, action: Action) -> Journal:
        kind, at = action.kind, self.now
        if kind is ActionKind.START:
            return self._record(journal, Event(EventType.STARTED, at))
        if kind is ActionKind.CHECK_PRECONDITIONS:
            if self.refuse:
                event = Event(EventType.EXIT, at, reason=ExitReason.REFUSED, message="busy holds")
                return self._record(journal, event)
            return self._record(journal, Event(EventType.PRECONDITIONS_PASSED, at))
        if kind is ActionKind.START_STEP:
            return self._record(journal, Event(EventType.STEP_STARTED, at, step=action.step))
        if kind is ActionKind.APPLY_STEP:
            progressed = False
            for cluster in action.clusters:
                if cluster == self.error_on:
                    event = Event(EventType.EXIT, self.now, reason=ExitReason.ERROR,
                                  cluster=cluster, message="422 from the apiserver")  # fmt: skip
                    return self._record(journal, event)
                if cluster in self.stuck:
                    continue
                self.now += 0.25
                event = Event(EventType.STEP_APPLIED, self.now, step=action.step,
                              cluster=cluster, latency=0.25)  # fmt: skip
                journal = self._record(journal, event)
                progressed = True
            if not progressed:
                self.now += 5
            return journal
        if kind is ActionKind.EVALUATE_GUARDS:
            for guard in action.guards:
                holds = self.holds(guard, self.now)
                event = Event(EventType.GUARD_EVALUATED, self.now, guard=guard,
                              value=0.2 if holds else 0.0, holds=holds)  # fmt: skip
                journal = self._record(journal, event)
            return journal
        if kind is ActionKind.EXIT:
            return self._record(journal, Event(EventType.EXIT, at, reason=action.reason))
        if kind is ActionKind.ROLL_BACK:
            for cluster in action.clusters:
                self.now += 0.1
                event = Event(EventType.ROLLBACK_APPLIED, self.now, cluster=cluster)
                journal = self._record(journal, event)
            return journal
        if kind is ActionKind.VERIFY:
            ok = self.verify_failures <= 0
            self.verify_failures -= 1
            message = "" if ok else "DrillObjectLeft: VirtualService default/x in c2"
            return self._record(journal, Event(EventType.VERIFIED, at, holds=ok, message=message))
        assert kind is ActionKind.WAIT and action.until is not None
        assert action.until > self.now, "a wait must move time forward"
        self.now = action.until
        return journal

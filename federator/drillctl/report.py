"""A drill's report: what happened, what the mesh did meanwhile, and the verdict. Pure.

Built for every run, aborted and refused ones included, from the Drill object (spec and
journal) plus what ``federator.drillctl.collect`` fetched from the store (golden signals,
exemplar traces with their log lines). Everything the renderers need is computed here once:
the timeline with offsets from the start, each step's propagation latency per cluster, the
guard evaluations and the breach, rollback and verification times, and the signal summaries
per window. ``report_text.to_json`` is the machine form; ``report_text.to_markdown`` and
``report_html.to_html`` are views of the same ``Report``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from federator.core.drills.journal import Event, EventType, Journal, Phase, new_journal, verdict
from federator.core.drills.spec import DrillSpec
from federator.core.drills.verify import drift_of
from federator.core.model import ServiceKey
from federator.drillctl.signals import (
    Points,
    SeriesSummary,
    Signal,
    Windows,
    summarize,
)


@dataclass(frozen=True, slots=True)
class Exemplar:
    """A trace with an error span during the drill, and the log lines correlated with it."""

    trace_id: str
    url: str
    root: str
    at: float
    duration_ms: float
    logs: tuple[tuple[float, str, str, str], ...] = ()
    """(time, cluster, severity, body) per log line."""


@dataclass(frozen=True, slots=True)
class Telemetry:
    """What the store gave (or why it could not)."""

    windows: Windows | None = None
    series: Mapping[ServiceKey, Mapping[Signal, Mapping[str, Points]]] = field(default_factory=dict)
    """service -> signal -> client cluster -> points."""
    exemplars: tuple[Exemplar, ...] = ()
    problems: tuple[str, ...] = ()
    """Why something is missing (no store given, a query failed): shown in the report."""
    queries: Mapping[ServiceKey, Mapping[Signal, str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: float
    offset: float
    """Seconds since the drill started (negative: before)."""
    kind: str
    text: str
    level: str = "info"
    """info, ok, warn or bad: how a view colours it."""


@dataclass(frozen=True, slots=True)
class StepRow:
    index: int
    name: str
    kind: str
    started: float | None
    latencies: Mapping[str, float]
    """Cluster -> seconds from the step's start until that cluster applied it."""


@dataclass(frozen=True, slots=True)
class GuardRow:
    name: str
    expr: str
    kind: str
    """abortWhen or steadyState."""
    evaluations: tuple[tuple[float, float | None, bool | None], ...]
    """(time, value, holds) as kept in the journal (bounded: first, breach, most recent)."""
    breached_at: float | None


@dataclass(frozen=True, slots=True)
class Report:
    namespace: str
    name: str
    phase: str
    reason: str
    verdict: str
    hypothesis: str
    services: tuple[ServiceKey, ...]
    targets: tuple[str, ...]
    started: float | None
    rollback_started: float | None
    finished: float | None
    breach: str
    """The breaching guard, its value and time; empty if none."""
    breach_to_verified: float | None
    verification: str
    drift: str
    """What the verification found changed during the drill (not an error; the federation
    moved on, e.g. a pod became ready): "none", "3 object(s): ...", "unknown (...)" or ""."""
    steps: tuple[StepRow, ...]
    guards: tuple[GuardRow, ...]
    timeline: tuple[TimelineEntry, ...]
    telemetry: Telemetry
    summaries: Mapping[ServiceKey, Mapping[Signal, Mapping[str, SeriesSummary]]]
    problems: tuple[str, ...]
    generated: float

    @property
    def failed(self) -> bool:
        return self.verdict != "Confirmed"


def ts(at: float | None) -> str:
    if at is None:
        return "-"
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def event_text(e: Event, spec: DrillSpec | None) -> tuple[str, str]:
    """One journal event as a sentence, and its level (info, ok, warn, bad)."""
    step = ""
    if e.step is not None:
        name = spec.steps[e.step].name if spec and 0 <= e.step < len(spec.steps) else "?"
        step = f"step {e.step} {name}"
    match e.type:
        case EventType.STARTED:
            return "drill started", "info"
        case EventType.PRECONDITIONS_PASSED:
            return "preconditions passed", "ok"
        case EventType.STEP_STARTED:
            return f"{step} started", "info"
        case EventType.STEP_APPLIED:
            return f"{step} applied in {e.cluster} after {e.latency or 0:.3f}s", "ok"
        case EventType.GUARD_EVALUATED:
            value = "n/a" if e.value is None else f"{e.value:g}"
            holds = {True: "HOLDS", False: "clear", None: "not evaluated"}[e.holds]
            return f"guard {e.guard} = {value} ({holds}) {e.message}".strip(), (
                "bad" if e.holds else "info"
            )
        case EventType.EXIT:
            reason = e.reason.value if e.reason else "?"
            level = "ok" if reason == "Completed" else "bad"
            return f"exit: {reason} {e.message}".strip(), level
        case EventType.ROLLBACK_APPLIED:
            return f"rolled back in {e.cluster}", "ok"
        case EventType.VERIFIED:
            if e.holds:
                return "rollback verified: live objects equal the expected ones", "ok"
            return f"verification found mismatches: {e.message}", "bad"
    return e.type.value, "info"


def _timeline(journal: Journal, spec: DrillSpec | None, start: float) -> tuple[TimelineEntry, ...]:
    """The journal's events in time order; guard evaluations that held (or failed) are
    included, a run of them for the same guard folded into one entry."""
    events = sorted(
        (*journal.events, *(e for e in journal.evaluations if e.holds or e.holds is None)),
        key=lambda e: (e.at, e.type is not EventType.GUARD_EVALUATED),  # a breach, then its exit
    )
    out: list[TimelineEntry] = []
    run: list[Event] = []

    def flush() -> None:
        if not run:
            return
        first, last = run[0], run[-1]
        if len(run) == 1:
            text, level = event_text(first, spec)
        else:
            value = "n/a" if last.value is None else f"{last.value:g}"
            verb = "held" if first.holds else "could not be evaluated"
            text = (
                f"guard {first.guard} {verb} at {len(run)} evaluations from "
                f"{first.at - start:+.1f}s to {last.at - start:+.1f}s (last value {value})"
            )
            level = "bad" if first.holds else "warn"
        out.append(TimelineEntry(first.at, first.at - start, first.type.value, text, level))
        run.clear()

    for e in events:
        if e.type is EventType.GUARD_EVALUATED:
            if run and (run[0].guard, run[0].holds) != (e.guard, e.holds):
                flush()
            run.append(e)
            continue
        flush()
        text, level = event_text(e, spec)
        out.append(TimelineEntry(e.at, e.at - start, e.type.value, text, level))
    flush()
    return tuple(out)


def _steps(journal: Journal, spec: DrillSpec | None) -> tuple[StepRow, ...]:
    rows: list[StepRow] = []
    names = [(s.name, s.kind) for s in spec.steps] if spec else []
    started = {e.step: e.at for e in journal.events if e.type is EventType.STEP_STARTED}
    for index in sorted({*started, *range(len(names))}):
        if index is None:
            continue
        latencies = {
            str(e.cluster): e.latency or 0.0
            for e in journal.events
            if e.type is EventType.STEP_APPLIED and e.step == index and e.cluster
        }
        name, kind = names[index] if index < len(names) else ("?", "?")
        rows.append(StepRow(index, name, kind, started.get(index), latencies))
    return tuple(rows)


def _guards(journal: Journal, spec: DrillSpec | None) -> tuple[GuardRow, ...]:
    if spec is None:
        return ()
    out = []
    pairs = [("abortWhen", g) for g in spec.abort_when]
    pairs += [("steadyState", g) for g in spec.hypothesis.steady_state]
    breach = _breach_event(journal)
    for kind, guard in pairs:
        evals = tuple(
            (e.at, e.value, e.holds) for e in journal.evaluations if e.guard == guard.name
        )
        breached = breach.at if breach and breach.guard == guard.name else None
        out.append(GuardRow(guard.name, guard.expr, kind, evals, breached))
    return tuple(out)


def _breach_event(journal: Journal) -> Event | None:
    if journal.reason is None or journal.reason.value != "GuardBreached":
        return None
    held = [e for e in journal.evaluations if e.holds]
    exit_at = next((e.at for e in journal.events if e.type is EventType.EXIT), None)
    before = [e for e in held if exit_at is None or e.at <= exit_at]
    return before[-1] if before else (held[-1] if held else None)


def build_report(
    *,
    obj: Mapping[str, Any],
    spec: DrillSpec | None,
    journal: Journal | None,
    telemetry: Telemetry,
    now: float,
    read_errors: tuple[str, ...] = (),
) -> Report:
    meta = obj.get("metadata") or {}
    problems = [*read_errors, *telemetry.problems]
    if journal is None:
        problems.append("the drill has no journal yet: the controller has not picked it up")
    j = journal
    started = j.started_at if j else None
    exit_at = next((e.at for e in j.events if e.type is EventType.EXIT), None) if j else None
    verified = [e for e in j.events if e.type is EventType.VERIFIED] if j else []
    finished = verified[-1].at if verified and j and j.terminal else None
    breach = _breach_event(j) if j else None
    breach_text = ""
    if breach is not None:
        value = "n/a" if breach.value is None else f"{breach.value:g}"
        breach_text = f"guard {breach.guard} held with value {value} at {ts(breach.at)}"
    verification, drift = "not yet", ""
    if verified:
        last = verified[-1]
        verification = "verified" if last.holds else f"mismatch: {last.message}"
        drift = drift_of(last.message) if last.holds else ""
        if j and j.phase is Phase.FAILED:
            verification = f"FAILED after {j.verify_attempts} attempts: {last.message}"
    w = telemetry.windows
    summaries = {
        key: {
            signal: {cluster: summarize(points, w) for cluster, points in by_cluster.items()}
            for signal, by_cluster in by_signal.items()
        }
        for key, by_signal in telemetry.series.items()
    } if w is not None else {}  # fmt: skip
    return Report(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        phase=j.phase.value if j else "",
        reason=j.reason.value if j and j.reason else "",
        verdict=verdict(j).value if j and j.terminal else "Pending",
        hypothesis=spec.hypothesis.description if spec else "",
        services=spec.services if spec else (),
        targets=tuple(j.targets) if j else (),
        started=started,
        rollback_started=exit_at,
        finished=finished,
        breach=breach_text,
        breach_to_verified=(finished - breach.at) if breach and finished else None,
        verification=verification,
        drift=drift,
        steps=_steps(j or new_journal(spec.name, ()), spec) if spec else (),
        guards=_guards(j, spec) if j else (),
        timeline=_timeline(j, spec, started or (j.events[0].at if j.events else now)) if j else (),
        telemetry=telemetry,
        summaries=summaries,
        problems=tuple(problems),
        generated=now,
    )

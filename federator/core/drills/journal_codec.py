"""Journal <-> the Drill resource's ``status`` (plain dicts, JSON/YAML-safe).

Times are RFC 3339 strings with milliseconds (what ``kubectl get -o yaml`` shows well);
``version`` says which layout this is. A status that cannot be read - a newer layout, a
hand edit - must not leave the mesh changed: ``load_status`` then returns a journal that
rolls back (the rollback finds drill objects by label, so it needs nothing from the journal).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from federator.core.drills.journal import (
    SCHEMA_VERSION,
    Event,
    EventType,
    ExitReason,
    Journal,
    Phase,
    new_journal,
)
from federator.core.model import ClusterId


def _ts(at: float | None) -> str | None:
    if at is None:
        return None
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _at(text: Any) -> float | None:
    if text is None:
        return None
    if not isinstance(text, str):
        raise TypeError(f"not a timestamp: {text!r}")
    return round(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp(), 3)


def _need_at(text: Any) -> float:
    at = _at(text)
    if at is None:
        raise ValueError("missing time")
    return at


def event_to_dict(event: Event) -> dict[str, Any]:
    out: dict[str, Any] = {"type": event.type.value, "at": _ts(event.at)}
    for name in ("step", "cluster", "latency", "guard", "value", "holds"):
        value = getattr(event, name)
        if value is not None:
            out[name] = value
    if event.reason is not None:
        out["reason"] = event.reason.value
    if event.message:
        out["message"] = event.message
    return out


def event_from_dict(raw: Mapping[str, Any]) -> Event:
    value = raw.get("value")
    latency = raw.get("latency")
    cluster = raw.get("cluster")
    return Event(
        type=EventType(raw["type"]),
        at=_need_at(raw["at"]),
        step=int(raw["step"]) if raw.get("step") is not None else None,
        cluster=ClusterId(str(cluster)) if cluster is not None else None,
        latency=float(latency) if latency is not None else None,
        guard=str(raw["guard"]) if raw.get("guard") is not None else None,
        value=float(value) if value is not None else None,
        holds=bool(raw["holds"]) if raw.get("holds") is not None else None,
        reason=ExitReason(raw["reason"]) if raw.get("reason") is not None else None,
        message=str(raw.get("message", "")),
    )


def to_status(journal: Journal) -> dict[str, Any]:
    """The journal as the resource's ``status`` (``None`` fields are left out)."""
    out: dict[str, Any] = {
        "version": journal.version,
        "phase": journal.phase.value,
        "reason": journal.reason.value if journal.reason else None,
        "targets": list(journal.targets),
        "startedAt": _ts(journal.started_at),
        "step": journal.step,
        "stepStartedAt": _ts(journal.step_started_at),
        "stepReadyAt": _ts(journal.step_ready_at),
        "applied": list(journal.applied),
        "rolledBack": list(journal.rolled_back),
        "verifyAttempts": journal.verify_attempts,
        "lastEvaluated": {k: _ts(v) for k, v in sorted(journal.last_evaluated.items())},
        "holdingSince": {k: _ts(v) for k, v in sorted(journal.holding_since.items())},
        "events": [event_to_dict(e) for e in journal.events],
        "evaluations": [event_to_dict(e) for e in journal.evaluations],
        "evaluationsTotal": journal.evaluations_total,
        "steadyStateViolations": journal.steady_state_violations,
    }
    return {k: v for k, v in out.items() if v is not None}


def _times(raw: Any) -> dict[str, float]:
    return {str(k): _need_at(v) for k, v in (raw or {}).items()}


def from_status(drill: str, status: Mapping[str, Any]) -> Journal:
    """The journal in ``status``; ``ValueError`` if it is not one this version can read."""
    if status.get("version") != SCHEMA_VERSION:
        raise ValueError(f"status version {status.get('version')!r} is not {SCHEMA_VERSION}")
    try:
        reason = status.get("reason")
        return Journal(
            drill=drill,
            targets=tuple(ClusterId(str(c)) for c in status.get("targets") or ()),
            phase=Phase(status["phase"]),
            reason=ExitReason(reason) if reason is not None else None,
            started_at=_at(status.get("startedAt")),
            step=int(status.get("step", -1)),
            step_started_at=_at(status.get("stepStartedAt")),
            step_ready_at=_at(status.get("stepReadyAt")),
            applied=tuple(ClusterId(str(c)) for c in status.get("applied") or ()),
            rolled_back=tuple(ClusterId(str(c)) for c in status.get("rolledBack") or ()),
            verify_attempts=int(status.get("verifyAttempts", 0)),
            last_evaluated=_times(status.get("lastEvaluated")),
            holding_since=_times(status.get("holdingSince")),
            events=tuple(event_from_dict(e) for e in status.get("events") or ()),
            evaluations=tuple(event_from_dict(e) for e in status.get("evaluations") or ()),
            evaluations_total=int(status.get("evaluationsTotal", 0)),
            steady_state_violations=int(status.get("steadyStateViolations", 0)),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"status is not a drill journal: {exc!r}") from exc


def load_status(
    drill: str, status: Mapping[str, Any] | None, *, targets: tuple[ClusterId, ...], now: float
) -> Journal:
    """The journal to continue from: a new one for an empty status, the stored one, or - if
    the status cannot be read - a journal that rolls back in ``targets`` (``LeaderLost``)."""
    if not status or "phase" not in status:
        return new_journal(drill, targets)
    try:
        return from_status(drill, status)
    except ValueError as exc:
        crash = Event(
            EventType.EXIT,
            at=round(now, 3),
            reason=ExitReason.CRASH,
            message=f"unreadable status, rolling back: {exc}",
        )
        return Journal(
            drill=drill,
            targets=tuple(sorted(targets)),
            phase=Phase.ROLLING_BACK if targets else Phase.VERIFYING,
            reason=ExitReason.CRASH,
            events=(crash,),
        )

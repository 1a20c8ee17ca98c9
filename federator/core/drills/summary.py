"""One drill object (as read from the apiserver) -> what listings show. Pure.

``meshfed drill status`` and the gRPC ListDrills/WatchDrills show the same row, so the
reading lives once, here: the spec is parsed for the step names and services, the status
through ``journal_codec`` for phase, step and verdict. A spec or status that cannot be read
(a hand edit, a newer layout) still gives a row, with the problem in ``error``: a listing
must show every drill, above all a broken one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from federator.core.drills.journal import TERMINAL, Journal, verdict
from federator.core.drills.journal_codec import from_status
from federator.core.drills.parse import parse_drill
from federator.core.drills.spec import DrillSpec
from federator.core.model import ClusterId, ServiceKey
from federator.errors import DrillSpecError


@dataclass(frozen=True, slots=True)
class DrillSummary:
    namespace: str
    name: str
    phase: str
    """Journal phase; empty before the controller wrote a status."""
    reason: str
    step: int
    step_name: str
    steps: int
    verdict: str
    """Confirmed / Refuted / Inconclusive once terminal; empty while it runs."""
    targets: tuple[ClusterId, ...]
    applied: tuple[ClusterId, ...]
    services: tuple[ServiceKey, ...]
    halt: bool
    created: datetime | None
    started: datetime | None
    error: str
    """Why the spec or status could not be read; empty if both could."""

    @property
    def terminal(self) -> bool:
        return self.phase in {p.value for p in TERMINAL}


@dataclass(frozen=True, slots=True)
class ReadDrill:
    """A drill object read back: spec and journal when readable, and the problems if not."""

    obj: Mapping[str, Any]
    spec: DrillSpec | None
    journal: Journal | None
    errors: tuple[str, ...]


def read_drill(obj: Mapping[str, Any]) -> ReadDrill:
    errors: list[str] = []
    spec: DrillSpec | None = None
    journal: Journal | None = None
    meta = obj.get("metadata") or {}
    try:
        spec = parse_drill(obj)
    except DrillSpecError as exc:
        errors.append(f"spec: {exc}")
    status = obj.get("status") or {}
    if status.get("phase"):
        try:
            journal = from_status(str(meta.get("name", "")), status)
        except ValueError as exc:
            errors.append(f"status: {exc}")
    return ReadDrill(obj, spec, journal, tuple(errors))


def _time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def summarize(obj: Mapping[str, Any]) -> DrillSummary:
    read = read_drill(obj)
    meta = obj.get("metadata") or {}
    raw_spec = obj.get("spec") or {}
    spec, journal = read.spec, read.journal
    step = journal.step if journal is not None else -1
    step_name = ""
    if spec is not None and 0 <= step < len(spec.steps):
        step_name = spec.steps[step].name
    started = None
    if journal is not None and journal.started_at is not None:
        started = datetime.fromtimestamp(journal.started_at, UTC)
    return DrillSummary(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        phase=journal.phase.value
        if journal is not None
        else str((obj.get("status") or {}).get("phase", "")),
        reason=journal.reason.value if journal is not None and journal.reason else "",
        step=step,
        step_name=step_name,
        steps=len(spec.steps) if spec is not None else len(raw_spec.get("steps") or ()),
        verdict=verdict(journal).value if journal is not None and journal.terminal else "",
        targets=journal.targets if journal is not None else (),
        applied=journal.applied if journal is not None else (),
        services=spec.services if spec is not None else (),
        halt=bool(raw_spec.get("halt", False)),
        created=_time(meta.get("creationTimestamp")),
        started=started,
        error="; ".join(read.errors),
    )

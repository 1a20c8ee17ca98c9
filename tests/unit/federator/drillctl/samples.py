"""Drill objects with real journals (driven through the journal state machine by the
simulated controller of the core's tests) and store answers shaped like the real API's."""

from __future__ import annotations

import math
from typing import Any

from federator.core.drills.journal import Journal
from federator.core.drills.journal_codec import to_status
from federator.core.drills.parse import parse_drill
from federator.core.model import ServiceKey
from federator.drillctl.report import Exemplar, Telemetry
from federator.drillctl.signals import Points, Signal, windows
from tests.unit.federator.core.drills.builders import base_spec, document
from tests.unit.federator.core.drills.journal_sim import T0, Sim

ABORT = {"abort": {"percentage": 50, "httpStatus": 503}}
REVIEWS = ServiceKey("default", "reviews")
RATINGS = ServiceKey("default", "ratings")


def drill_doc(**extra: Any) -> dict[str, Any]:
    extra.setdefault("hypothesis", {"description": "ratings keeps answering"})
    doc = document(base_spec(ABORT, **extra))
    doc["metadata"].update(
        namespace="meshfed-system", creationTimestamp="2023-11-14T22:13:10Z", uid="u-1"
    )
    return doc


def run(
    *, breach_after: float | None = 20.0, halt_at: float | None = None, verify_failures: int = 0
) -> tuple[dict[str, Any], Journal]:
    """A drill object whose status is the journal of a simulated run."""
    doc = drill_doc()
    spec = parse_drill(doc)
    holds = (lambda g, t: False) if breach_after is None else (lambda g, t: t > T0 + breach_after)
    sim = Sim(spec, holds=holds, halt_at=halt_at, roundtrip=True, verify_failures=verify_failures)
    journal = sim.run()
    doc["status"] = to_status(journal)
    return doc, journal


def series(level: float, bump: float, *, start: float, end: float, first: float, stop: float,
           step: float) -> Points:  # fmt: skip
    """A wavy series at ``level`` that moves by ``bump`` between start and end."""
    out = []
    t = first
    while t <= stop:
        value = level + (bump if start <= t < end else 0.0) + 0.05 * level * math.sin(t / 7)
        out.append((t, max(0.0, value)))
        t += step
    return tuple(out)


def telemetry(journal: Journal, *, now: float) -> Telemetry:
    exit_at = next(e.at for e in journal.events if e.type.value == "Exit")
    assert journal.started_at is not None
    w = windows(started=journal.started_at, ended=exit_at, verified=journal.events[-1].at, now=now)
    shape = {
        Signal.RATE: (40.0, -5.0),
        Signal.ERRORS: (0.002, 0.25),
        Signal.P50: (12.0, 3.0),
        Signal.P99: (80.0, 900.0),
    }
    data = {
        key: {
            signal: {
                cluster: series(
                    level * (1 + i / 4),
                    bump,
                    start=w.start,
                    end=w.end,
                    first=w.first,
                    stop=w.stop,
                    step=w.step,
                )
                for i, cluster in enumerate(("c1", "c2", "c3"))
            }
            for signal, (level, bump) in shape.items()
        }
        for key in (REVIEWS, RATINGS)
    }
    exemplar = Exemplar(
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        url="http://store:9090/api/traces/4bf92f3577b34da6a3ce929d0e0e4736?logs=true",
        root="productpage.default",
        at=w.start + 5,
        duration_ms=12.5,
        logs=((w.start + 5, "c2", "ERROR", "upstream answered 503 <fault filter abort>"),),
    )
    return Telemetry(windows=w, series=data, exemplars=(exemplar,))

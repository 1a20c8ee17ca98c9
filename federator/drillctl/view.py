"""What ``meshfed drill run`` (following) and ``meshfed drill status`` show: rich renderables.

Built from a Drill object only (spec + journal, through ``federator.core.drills.summary``), so
the live view, the one-drill status and the table cannot disagree. Exit codes by outcome live
here too, as one table, because ``run`` and ``status --wait`` share them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from federator.core.drills.journal import EventType, Journal
from federator.core.drills.summary import ReadDrill, summarize
from federator.drillctl.report import ts

EXIT_OK = 0
"""Succeeded, hypothesis confirmed."""
EXIT_REFUSED = 1
"""Refused (by plan/run's checks or the controller's preconditions)."""
EXIT_BAD_SPEC = 2
"""The spec is invalid or names what the federation does not have."""
EXIT_REFUTED = 3
"""A guard breached or a steady-state condition held."""
EXIT_INCONCLUSIVE = 4
"""Ended otherwise: halt, freeze, TTL, lost leader, error."""
EXIT_FAILED = 5
"""Rollback could not be verified: look at the cluster now."""
EXIT_TIMEOUT = 6
"""``--timeout`` passed (or Ctrl-C) before the drill ended; it keeps running."""

PHASE_STYLE = {
    "Succeeded": "green",
    "Aborted": "yellow",
    "Refused": "yellow",
    "Failed": "bold red",
    "Running": "cyan",
    "RollingBack": "magenta",
    "Verifying": "magenta",
}
VERDICT_STYLE = {"Confirmed": "green", "Refuted": "red", "Inconclusive": "yellow"}


def exit_code(phase: str, verdict: str) -> int:
    """The exit code of a terminal drill (see the ``EXIT_*`` constants)."""
    if phase == "Failed":
        return EXIT_FAILED
    if verdict == "Refuted":
        return EXIT_REFUTED
    if phase == "Refused":
        return EXIT_REFUSED
    if phase == "Succeeded" and verdict == "Confirmed":
        return EXIT_OK
    return EXIT_INCONCLUSIVE


def age(created: float | None, now: float) -> str:
    if created is None:
        return "-"
    s = max(0, int(now - created))
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    return f"{s // 3600}h" if s < 172800 else f"{s // 86400}d"


def drills_table(objs: Sequence[Mapping[str, Any]], *, now: float | None = None) -> Table:
    now = time.time() if now is None else now
    table = Table(title="Drills", title_justify="left")
    for column in ("Namespace", "Name", "Phase", "Step", "Verdict", "Reason", "Age"):
        table.add_column(column)
    for obj in objs:
        s = summarize(obj)
        step = f"{s.step + 1}/{s.steps} {s.step_name}" if s.step >= 0 else f"-/{s.steps}"
        phase = s.phase or "(no status)"
        table.add_row(
            s.namespace,
            s.name + (" [red](halt)[/]" if s.halt and not s.terminal else ""),
            f"[{PHASE_STYLE.get(phase, 'white')}]{phase}[/]",
            step,
            f"[{VERDICT_STYLE.get(s.verdict, 'white')}]{s.verdict or '-'}[/]",
            s.reason or ("[red]" + s.error[:60] + "[/]" if s.error else "-"),
            age(s.created.timestamp() if s.created else None, now),
        )
    return table


def _guards(journal: Journal) -> Table:
    table = Table(title="Guards (latest evaluation)", title_justify="left")
    for column in ("Guard", "Value", "Holds", "At", "Holding since"):
        table.add_column(column)
    latest: dict[str, Any] = {}
    for e in journal.evaluations:
        latest[e.guard or "?"] = e
    for name, e in sorted(latest.items()):
        holds = {True: "[red]yes[/]", False: "[green]no[/]", None: "[yellow]n/a[/]"}[e.holds]
        since = journal.holding_since.get(name)
        table.add_row(
            name,
            "n/a" if e.value is None else f"{e.value:g}",
            holds,
            ts(e.at),
            ts(since) if since else "-",
        )
    return table


def drill_view(read: ReadDrill, *, now: float | None = None, events: int = 12) -> RenderableType:
    """One drill: phase and step, per-cluster progress, guards, the latest events."""
    now = time.time() if now is None else now
    s = summarize(read.obj)
    parts: list[RenderableType] = []
    head = Text.from_markup(
        f"drill [bold]{s.namespace}/{s.name}[/]: "
        f"[{PHASE_STYLE.get(s.phase, 'white')}]{s.phase or 'waiting for the controller'}[/]"
        + (f" ({s.reason})" if s.reason else "")
        + (
            f", verdict [{VERDICT_STYLE.get(s.verdict, 'white')}]{s.verdict}[/]"
            if s.verdict
            else ""
        )
    )
    parts.append(head)
    for problem in read.errors:
        parts.append(Text(f"cannot read {problem}", style="red"))
    j = read.journal
    if j is None:
        return Group(*parts)
    if j.started_at is not None:
        step = f"step {s.step + 1}/{s.steps} {s.step_name}" if s.step >= 0 else "no step yet"
        if j.terminal and j.events:
            parts.append(Text(f"{step}; ran for {j.events[-1].at - j.started_at:.1f}s"))
        else:
            parts.append(Text(f"{step}; running for {now - j.started_at:.1f}s"))
    clusters = Table(title="Clusters", title_justify="left")
    for column in ("Cluster", "Step applied", "Latency", "Rolled back"):
        clusters.add_column(column)
    for cluster in j.targets:
        latency = next(
            (
                e.latency
                for e in reversed(j.events)
                if e.type is EventType.STEP_APPLIED and e.cluster == cluster and e.step == j.step
            ),
            None,
        )
        clusters.add_row(
            cluster,
            "[green]yes[/]" if cluster in j.applied else "-",
            f"{latency:.3f}s" if latency is not None else "-",
            "[green]yes[/]" if cluster in j.rolled_back else "-",
        )
    parts.append(clusters)
    if j.evaluations:
        parts.append(_guards(j))
    timeline = Table(title="Latest events", title_justify="left")
    for column in ("At", "Event", "Detail"):
        timeline.add_column(column)
    for e in j.events[-events:]:
        detail = " ".join(
            x
            for x in (
                f"step {e.step}" if e.step is not None else "",
                e.cluster or "",
                f"{e.latency:.3f}s" if e.latency is not None else "",
                e.reason.value if e.reason else "",
                _verified(e.type, e.holds),
                e.message[:100],
            )
            if x
        )
        timeline.add_row(ts(e.at), e.type.value, detail)
    parts.append(timeline)
    return Group(*parts)


def _verified(kind: EventType, holds: bool | None) -> str:
    if kind is not EventType.VERIFIED:
        return ""
    return "ok" if holds else "mismatch"

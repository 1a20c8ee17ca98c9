"""A drill as the Drills page draws it: its live timeline, steps and guards. Pure.

The federator's ListDrills/WatchDrills carry the whole Drill object (``object_json``), so the
console builds exactly the report ``meshfed drill report`` builds (``federator.drillctl.report``,
pure) from what the API sent: the timeline with offsets from the start, each step's
propagation per cluster, the guards and their evaluations, the verdict. Only the golden
signals need the store; they are fetched for the full HTML report (``app``), not for the live
view, which is redrawn on every change of the drill.
"""

from __future__ import annotations

import json
from typing import Any

from federator.api._generated.meshfed.v1 import federation_pb2 as pb
from federator.core.drills.summary import ReadDrill, read_drill
from federator.drillctl.report import Report, Telemetry, build_report
from federator.drillctl.report_text import to_json
from meshfed.console.views import drill_json


def read_object(d: pb.DrillSummary) -> ReadDrill | None:
    """The Drill object the API sent, read back; None from a federator that sends none."""
    if not d.object_json:
        return None
    return read_drill(json.loads(d.object_json))


def live_report(read: ReadDrill, now: float, telemetry: Telemetry | None = None) -> Report:
    """The drill's report now; without ``telemetry`` it has no signals (the live view)."""
    return build_report(
        obj=read.obj,
        spec=read.spec,
        journal=read.journal,
        telemetry=telemetry or Telemetry(),
        now=now,
        read_errors=read.errors,
    )


def drill_detail(d: pb.DrillSummary, *, now: float) -> dict[str, Any]:
    """The listing row plus the report's timeline, steps and guards as JSON."""
    row = drill_json(d)
    read = read_object(d)
    if read is None:
        row["report"] = None
        row["problem"] = (
            "this federator's API sends no Drill object (an older version): only the "
            "summary is shown; `meshfed drill report` prints the timeline"
        )
        return row
    body = to_json(live_report(read, now))
    scalars = (
        "hypothesis",
        "verdict",
        "startedAt",
        "rollbackStartedAt",
        "finishedAt",
        "breach",
        "breachToVerifiedSeconds",
        "verification",
    )
    report: dict[str, Any] = {k: body.get(k) for k in scalars}
    report.update({k: body.get(k) or [] for k in ("steps", "guards", "timeline", "problems")})
    row["report"] = report
    row["problem"] = ""
    return row

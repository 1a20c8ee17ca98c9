"""One Drill object -> the listing row (``summarize``) and its protobuf (``drill_to_pb``):
the same reading for ``meshfed drill status`` and ListDrills/WatchDrills; a broken object
still gets a row that says what is wrong."""

from __future__ import annotations

from typing import Any

import pytest

from federator.api._generated.meshfed.v1 import federation_pb2 as pb
from federator.api.convert import drill_event_to_pb, drill_to_pb
from federator.core.drills.summary import summarize
from tests.unit.federator.drillctl.samples import drill_doc, run

pytestmark = pytest.mark.unit


def test_terminal_drill_row_and_message() -> None:
    doc, journal = run(breach_after=20.0)
    s = summarize(doc)
    assert (s.phase, s.reason, s.verdict, s.step, s.step_name, s.steps) == (
        "Aborted", "GuardBreached", "Refuted", 0, "step-one", 1,
    )  # fmt: skip
    assert s.terminal and s.error == "" and s.targets == journal.targets
    msg = drill_to_pb(doc)
    assert (msg.namespace, msg.name, msg.phase, msg.verdict) == (
        "meshfed-system", "drill-1", "Aborted", "Refuted",
    )  # fmt: skip
    assert list(msg.targets) == ["c1", "c2", "c3"]
    assert [f"{k.namespace}/{k.name}" for k in msg.services] == [
        "default/reviews",
        "default/ratings",
    ]
    assert msg.started_time.seconds == int(journal.started_at or 0)
    assert msg.created_time.ToJsonString() == "2023-11-14T22:13:10Z"


def test_drill_without_status_has_no_phase_and_step_minus_one() -> None:
    msg = drill_to_pb(drill_doc())
    assert (msg.phase, msg.step, msg.verdict, msg.error) == ("", -1, "", "")
    assert not msg.HasField("started_time")


@pytest.mark.parametrize(
    ("breakage", "error"),
    [
        pytest.param(
            {"status": {"version": 2, "phase": "Running"}},
            "status: status version 2",
            id="newer-status-layout",
        ),
        pytest.param({"spec": {"services": []}}, "spec: spec.services", id="hand-edited-spec"),
    ],
)
def test_unreadable_objects_still_list_with_the_problem(
    breakage: dict[str, Any], error: str
) -> None:
    doc = drill_doc()
    doc.update(breakage)
    msg = drill_to_pb(doc)
    assert msg.name == "drill-1"
    assert error in msg.error


def test_event_types_map_by_name() -> None:
    doc = drill_doc()
    assert drill_event_to_pb("DELETED", doc).type == pb.DRILL_EVENT_TYPE_DELETED
    assert drill_event_to_pb("BOOKMARK", doc).type == pb.DRILL_EVENT_TYPE_UNSPECIFIED

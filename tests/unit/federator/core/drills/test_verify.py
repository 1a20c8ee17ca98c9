"""Verification after rollback: drill objects gone, federated objects equal to desired."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from federator.core.drills.render import render_step, with_drill_subsets
from federator.core.drills.verify import (
    DRIFT_LISTED,
    Mismatch,
    MismatchKind,
    Verification,
    drift_of,
    snapshot_cluster,
    verified_message,
    verify_cluster,
)
from federator.core.model import ClusterId, ObjectRef
from federator.core.render import Manifest, render_cluster
from tests.helpers.federator_builders import REVIEWS, make_config
from tests.unit.federator.core.drills.builders import (
    RATINGS,
    RATINGS_HOST,
    REVIEWS_HOST,
    desired,
    drill,
)

C3 = ClusterId("c3")
MEMBERS = {ClusterId(c): True for c in ("c1", "c2", "c3")}
SHIFT = {"shift": {"destinations": [{"cluster": "c1", "weight": 50},
                                    {"cluster": "c2", "weight": 50}]}}  # fmt: skip


def _desired() -> dict[ObjectRef, Manifest]:
    config = make_config()
    rendered = render_cluster(
        desired(), target=config.cluster("c3"), namespaces=frozenset({"default"}), config=config
    )
    return rendered.manifests


def _live(manifests: dict[ObjectRef, Manifest]) -> list[dict[str, Any]]:
    """As the apiserver returns them: extra metadata, status, managedFields of meshfed."""
    out = []
    for m in manifests.values():
        obj = copy.deepcopy(m)
        obj["metadata"]["resourceVersion"] = "42"
        obj["metadata"]["uid"] = "u-1"
        obj["status"] = {}
        out.append(obj)
    return out


def test_clean_rollback_has_no_mismatch() -> None:
    want = _desired()
    snapshot = snapshot_cluster(C3, _live(want), want)
    result = verify_cluster(
        C3, drill="drill-1", snapshot=snapshot, desired=want, live=_live(want), members=MEMBERS
    )
    assert result.ok
    assert result.mismatches == ()
    assert result.drift == ()


def test_leftovers_and_differences_are_mismatches() -> None:
    want = _desired()
    spec = drill(SHIFT)
    hosts = {REVIEWS: REVIEWS_HOST, RATINGS: RATINGS_HOST}
    live = _live(want)
    snapshot = snapshot_cluster(C3, live, want)
    # the drill's VirtualService was left behind, and the DR still carries the subsets
    live += list(render_step(spec, 0, target=C3, hosts=hosts).values())
    dr_index = next(i for i, o in enumerate(live) if o["kind"] == "DestinationRule"
                    and o["metadata"]["name"] == "meshfed-reviews")  # fmt: skip
    live[dr_index] = with_drill_subsets(live[dr_index], spec, REVIEWS)
    # a ServiceEntry is gone
    se_name = "meshfed-ratings"
    live = [
        o for o in live if not (o["kind"] == "ServiceEntry" and o["metadata"]["name"] == se_name)
    ]
    result = verify_cluster(
        C3, drill="drill-1", snapshot=snapshot, desired=want, live=live, members=MEMBERS
    )
    assert not result.ok
    kinds = sorted((m.kind, m.ref.kind, m.ref.name) for m in result.mismatches)
    assert (MismatchKind.MISSING, "ServiceEntry", "meshfed-ratings") in kinds
    assert sum(1 for k in kinds if k[0] is MismatchKind.DRILL_OBJECT_LEFT) == 2
    differs = next(m for m in result.mismatches if m.kind is MismatchKind.DIFFERS)
    assert differs.ref.name == "meshfed-reviews"
    # compared like diff does: only the labels/annotations meshfed's desired object sets
    assert differs.detail == "changed: spec.subsets"
    assert str(differs).startswith("Differs: DestinationRule default/meshfed-reviews in c3")


def test_another_drills_objects_are_not_this_drills_leftovers() -> None:
    want = _desired()
    other = drill(SHIFT, name="other")
    live = _live(want) + list(
        render_step(other, 0, target=C3, hosts={REVIEWS: REVIEWS_HOST}).values()
    )
    result = verify_cluster(
        C3,
        drill="drill-1",
        snapshot=snapshot_cluster(C3, live, want),
        desired=want,
        live=live,
        members=MEMBERS,
    )
    assert result.ok


def test_unexpected_owned_object_and_drift() -> None:
    want = _desired()
    snapshot = snapshot_cluster(C3, _live(want), want)
    stray = copy.deepcopy(next(iter(want.values())))
    stray["metadata"]["name"] = "meshfed-stray"
    # the federation changed during the drill: ratings is no longer desired
    now = {r: m for r, m in want.items() if r.name != "meshfed-ratings"}
    live = [*_live(now), stray]
    result = verify_cluster(
        C3, drill="drill-1", snapshot=snapshot, desired=now, live=live, members=MEMBERS
    )
    assert [(m.kind, m.ref.name) for m in result.mismatches] == [
        (MismatchKind.UNEXPECTED, "meshfed-stray")
    ]
    assert {r.name for r in result.drift} == {"meshfed-ratings"}


def test_objects_kept_by_fail_static_are_not_mismatches() -> None:
    want = _desired()
    stray = copy.deepcopy(next(m for m in want.values() if m["kind"] == "ServiceEntry"))
    stray["metadata"]["name"] = "meshfed-gone"
    stray["metadata"]["annotations"]["meshfed.io/source-clusters"] = "c2"
    live = [*_live(want), stray]
    c2_down = {**MEMBERS, ClusterId("c2"): False}
    kept = verify_cluster(C3, drill="d", snapshot=None, desired=want, live=live, members=c2_down)
    assert kept.ok
    assert kept.drift == (), "no snapshot, no drift"
    pruned = verify_cluster(C3, drill="d", snapshot={}, desired=want, live=live, members=MEMBERS)
    assert [(m.kind, m.ref.name) for m in pruned.mismatches] == [
        (MismatchKind.UNEXPECTED, "meshfed-gone")
    ]


def _verification(mismatches: int = 0, drift: int = 0) -> Verification:
    refs = [ObjectRef(C3, "ServiceEntry", "default", f"meshfed-s{i:02d}") for i in range(drift)]
    bad = [
        Mismatch(ObjectRef(C3, "VirtualService", "default", f"vs-{i}"),
                 MismatchKind.DRILL_OBJECT_LEFT, "still present")
        for i in range(mismatches)
    ]  # fmt: skip
    return Verification(C3, tuple(bad), tuple(refs))


@pytest.mark.parametrize(
    ("results", "snapshot", "message", "drift"),
    [
        pytest.param([_verification(drift=0)], True, "rollback verified; drift: none", "none",
                     id="no-drift"),
        pytest.param(
            [_verification(drift=2)], True,
            "rollback verified; drift: 2 object(s): ServiceEntry default/meshfed-s00 in c3, "
            "ServiceEntry default/meshfed-s01 in c3",
            "2 object(s): ServiceEntry default/meshfed-s00 in c3, "
            "ServiceEntry default/meshfed-s01 in c3",
            id="drift-named",
        ),
        pytest.param(
            [_verification()], False,
            "rollback verified; drift: unknown (no pre-drill snapshot: the leader changed)",
            "unknown (no pre-drill snapshot: the leader changed)",
            id="no-snapshot-after-a-crash",
        ),
        pytest.param(
            [_verification(drift=1), _verification(mismatches=1)], True,
            "DrillObjectLeft: VirtualService default/vs-0 in c3: still present", "",
            id="mismatches-win-over-drift",
        ),
    ],
)  # fmt: skip
def test_verified_message_and_its_drift(
    results: list[Verification], snapshot: bool, message: str, drift: str
) -> None:
    text = verified_message(results, snapshot=snapshot)
    assert text == message
    assert drift_of(text) == drift


def test_drift_beyond_the_limit_is_counted_not_named() -> None:
    text = verified_message([_verification(drift=DRIFT_LISTED + 3)], snapshot=True)
    assert text.startswith(f"rollback verified; drift: {DRIFT_LISTED + 3} object(s): ")
    assert text.endswith(" and 3 more") and text.count("ServiceEntry") == DRIFT_LISTED


def test_older_messages_have_no_drift_text() -> None:
    assert drift_of("") == ""
    assert drift_of("DrillObjectLeft: x") == ""

"""Desired vs live owned objects: create/update/no-op/delete and fail-static pruning."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from federator.core.diff import Op, Plan, diff_cluster, project
from federator.core.model import ClusterId, ObjectRef
from federator.core.render import Manifest, ref_of
from tests.helpers.federator_builders import acceptance_views, cid, make_config, manifests_for

ALL_TRUSTED: dict[ClusterId, bool] = {cid("c1"): True, cid("c2"): True, cid("c3"): True}
C2_DOWN: dict[ClusterId, bool] = ALL_TRUSTED | {cid("c2"): False}


def fields_of(value: dict[str, Any]) -> dict[str, Any]:
    """The fieldsV1 set server-side apply records for an applied value (ports: map list)."""
    out: dict[str, Any] = {}
    for key, sub in value.items():
        if key == "ports" and isinstance(sub, list):
            out["f:ports"] = {f'k:{{"name":"{p["name"]}"}}': {".": {}, **fields_of(p)} for p in sub}
        elif isinstance(sub, dict):
            out[f"f:{key}"] = {".": {}, **fields_of(sub)} if sub else {}
        else:
            out[f"f:{key}"] = {}
    return out


def read_back(manifest: Manifest, *, managed_fields: bool = True) -> dict[str, Any]:
    """``manifest`` as an apiserver returns it after a server-side apply by meshfed."""
    live = copy.deepcopy(manifest)
    meta = live["metadata"]
    meta.update(
        uid="7f1c",
        resourceVersion="4242",
        generation=1,
        creationTimestamp="2024-01-01T00:00:00Z",
    )
    meta["labels"]["team"] = "payments"  # someone else's label
    meta["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = "{}"
    if managed_fields:
        applied = {"metadata": {k: manifest["metadata"][k] for k in ("labels", "annotations")}}
        applied["spec"] = manifest["spec"]
        meta["managedFields"] = [
            {
                "manager": "meshfed",
                "operation": "Apply",
                "apiVersion": "networking.istio.io/v1",
                "fieldsType": "FieldsV1",
                "fieldsV1": fields_of(applied),
            }
        ]
    live["status"] = {"conditions": [{"type": "Reconciled", "status": "True"}]}
    return live


def desired_map(target: str = "c3", **config_kw: Any) -> dict[ObjectRef, Manifest]:
    manifests = manifests_for(make_config(**config_kw), acceptance_views(), target)
    return {ref_of(m, cid(target)): m for m in manifests}


def plan(
    desired: dict[ObjectRef, Manifest], actual: list[dict[str, Any]], members: dict[ClusterId, bool]
) -> Any:
    return diff_cluster(cluster=cid("c3"), desired=desired, actual=actual, members=members)


def test_create_when_absent() -> None:
    result = plan(desired_map(), [], ALL_TRUSTED)
    assert [(a.op, a.ref.kind) for a in result.actions] == [
        (Op.CREATE, "DestinationRule"),
        (Op.CREATE, "ServiceEntry"),
    ]


@pytest.mark.parametrize(
    "managed_fields", [True, False], ids=["managed-fields", "no-managed-fields"]
)
def test_resync_of_unchanged_world_writes_nothing(managed_fields: bool) -> None:
    desired = desired_map()
    live = [read_back(m, managed_fields=managed_fields) for m in desired.values()]
    again = desired_map()  # a fresh render, as after a resync
    result = plan(again, live, ALL_TRUSTED)
    assert result.actions == ()
    assert result.unchanged == 2
    assert Plan(clusters=(result,)).is_noop


def test_fields_added_by_other_writers_do_not_cause_writes() -> None:
    desired = desired_map()
    live = [read_back(m) for m in desired.values()]
    for obj in live:
        obj["spec"]["exportTo"] = ["."]  # another field manager's field, kept by SSA
    assert plan(desired, live, ALL_TRUSTED).actions == ()


def test_without_managed_fields_whole_spec_is_compared() -> None:
    desired = desired_map()
    live = [read_back(m, managed_fields=False) for m in desired.values()]
    for obj in live:
        obj["spec"]["exportTo"] = ["."]
    assert {a.op for a in plan(desired, live, ALL_TRUSTED).actions} == {Op.UPDATE}


def test_empty_values_from_the_apiserver_are_not_changes() -> None:
    desired = desired_map()
    live = [read_back(m, managed_fields=False) for m in desired.values()]
    for obj in live:
        obj["spec"]["subjectAltNames"] = []
        obj["spec"]["workloadSelector"] = None
    assert plan(desired, live, ALL_TRUSTED).actions == ()


def test_update_when_endpoints_change() -> None:
    live = [read_back(m) for m in desired_map().values()]
    for obj in live:
        if obj["kind"] == "ServiceEntry":
            obj["spec"]["endpoints"][0]["weight"] = 7
    (action,) = plan(desired_map(), live, ALL_TRUSTED).actions
    assert (action.op, action.ref.kind) == (Op.UPDATE, "ServiceEntry")
    assert action.reason == "changed: spec.endpoints"
    assert action.desired is not None and action.desired["spec"]["endpoints"][0]["weight"] == 2


def test_field_we_set_before_and_no_longer_want_is_removed() -> None:
    old = desired_map(regions=("region-a", "region-b"))
    live = [read_back(m) for m in old.values()]
    new = desired_map(regions=())  # failover dropped from the config
    (action,) = plan(new, live, ALL_TRUSTED).actions
    assert (action.op, action.ref.kind) == (Op.UPDATE, "DestinationRule")
    assert action.reason == "changed: spec.trafficPolicy"


def test_changed_own_label_is_an_update_but_others_labels_are_not() -> None:
    live = [read_back(m) for m in desired_map().values()]
    live[0]["metadata"]["labels"]["meshfed.io/service"] = "other.thing"
    (action,) = plan(desired_map(), live, ALL_TRUSTED).actions
    assert action.reason == "changed: labels.meshfed.io/service"


def test_not_owned_objects_are_never_touched() -> None:
    foreign = read_back(next(iter(desired_map().values())))
    del foreign["metadata"]["labels"]["app.kubernetes.io/managed-by"]
    foreign["metadata"]["name"] = "someone-elses"
    assert plan({}, [foreign], ALL_TRUSTED).actions == ()


PRUNE = [
    pytest.param(ALL_TRUSTED, "c1,c2", Op.DELETE, "no longer desired", id="all-sources-synced"),
    pytest.param(C2_DOWN, "c1,c2", Op.KEEP, "c2 not synced and healthy", id="source-down-keeps"),
    pytest.param(C2_DOWN, "c1", Op.DELETE, "sources c1", id="other-cluster-down-irrelevant"),
    pytest.param(
        {cid("c1"): True, cid("c3"): True},
        "c1,c2",
        Op.DELETE,
        "no longer desired",
        id="removed-member-does-not-block",
    ),
    pytest.param(C2_DOWN, None, Op.KEEP, "no source annotation", id="no-annotation-any-down"),
    pytest.param(ALL_TRUSTED, None, Op.DELETE, "no source annotation", id="no-annotation-all-up"),
]


@pytest.mark.parametrize(("members", "sources", "op", "reason"), PRUNE)
def test_prune_respects_fail_static(
    members: dict[ClusterId, bool], sources: str | None, op: Op, reason: str
) -> None:
    live = [read_back(m) for m in desired_map().values()]
    for obj in live:
        if sources is None:
            del obj["metadata"]["annotations"]["meshfed.io/source-clusters"]
        else:
            obj["metadata"]["annotations"]["meshfed.io/source-clusters"] = sources
    result = plan({}, live, members)
    assert [a.op for a in result.actions] == [op, op]
    assert all(reason in a.reason for a in result.actions)
    if op is Op.KEEP:
        assert result.deletes == () and len(result.kept) == 2


def test_unsynced_source_endpoints_are_carried_over() -> None:
    """Restart while c2 is down: c2's view is empty, but its live endpoints stay."""
    live = [read_back(m) for m in desired_map().values()]
    only_c1 = {
        cid("c1"): acceptance_views()[cid("c1")],
        cid("c3"): acceptance_views()[cid("c3")],
    }
    manifests = manifests_for(make_config(), only_c1, "c3")
    desired = {ref_of(m, cid("c3")): m for m in manifests}
    result = plan(desired, live, C2_DOWN)
    assert result.actions == ()  # merged desired == live: no write, no loss


def test_carry_over_merges_with_fresh_data() -> None:
    live = [read_back(m) for m in desired_map().values()]
    views = acceptance_views()
    views.pop(cid("c2"))
    views[cid("c1")] = dataclasses.replace(views[cid("c1")], gateway_addresses=("192.0.2.11",))
    desired = {ref_of(m, cid("c3")): m for m in manifests_for(make_config(), views, "c3")}
    (action,) = plan(desired, live, C2_DOWN).actions
    assert action.op is Op.UPDATE and "fail-static" in action.reason
    assert action.desired is not None
    addresses = [e["address"] for e in action.desired["spec"]["endpoints"]]
    assert addresses == ["192.0.2.11", "192.0.2.2"]
    assert action.desired["metadata"]["annotations"]["meshfed.io/source-clusters"] == "c1,c2"


def test_synced_source_that_stopped_exporting_is_dropped() -> None:
    live = [read_back(m) for m in desired_map().values()]
    views = acceptance_views()
    views.pop(cid("c2"))
    desired = {ref_of(m, cid("c3")): m for m in manifests_for(make_config(), views, "c3")}
    result = plan(desired, live, ALL_TRUSTED)
    se = next(a for a in result.actions if a.ref.kind == "ServiceEntry")
    assert se.desired is not None
    assert [e["address"] for e in se.desired["spec"]["endpoints"]] == ["192.0.2.1"]


def test_project_follows_fields_v1() -> None:
    value = {"spec": {"ports": [{"name": "a", "number": 1}, {"name": "b", "number": 2}], "x": 1}}
    fields: dict[str, Any] = {"f:spec": {"f:ports": {'k:{"name":"b"}': {".": {}, "f:number": {}}}}}
    assert project(value, fields) == {"spec": {"ports": [{"number": 2}]}}
    assert project([5, 6], {"v:6": {}}) == [6]
    assert project([5, 6], {"i:0": {}}) == [5]


def test_render_text_reads_like_kubectl_diff() -> None:
    live = [read_back(m) for m in desired_map().values()]
    live[1]["spec"]["endpoints"][0]["weight"] = 7
    stale = copy.deepcopy(live[0])
    stale["metadata"]["name"] = "meshfed-gone"
    result = plan(desired_map(), [*live, stale], C2_DOWN)
    text = Plan(clusters=(result,)).render_text()
    assert text.splitlines()[0] == (
        "cluster c3: 0 to create, 1 to update, 0 to delete, 1 kept by fail-static, 1 unchanged"
    )
    assert "! keep DestinationRule default/meshfed-gone (not desired, but prune suppressed" in text
    assert "~ update ServiceEntry default/meshfed-reviews (changed: spec.endpoints)" in text
    assert "-    weight: 7" in text and "+    weight: 2" in text
    assert "resourceVersion" not in text and "managedFields" not in text

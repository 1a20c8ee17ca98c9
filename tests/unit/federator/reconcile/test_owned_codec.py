"""How the owned index holds objects: the same object in several targets shares one
compressed body (uid and resourceVersion kept per object), bodies of changed or deleted
objects are released, and every object reads back exactly as compacted. No sockets."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from federator.core.model import FIELD_MANAGER, SERVICE_LABEL
from federator.reconcile.owned import MemberPool, OwnedIndex, Record, record_of
from federator.reconcile.owned_codec import BlobPool, Uid, Version, compact
from federator.reconcile.owned_slots import IdentSlots

SE, DR = "ServiceEntry", "DestinationRule"
KINDS = (SE, DR)


def obj(kind: str, name: str, *, rv: str, uid: str | None, port: int = 80) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "shop",
        "resourceVersion": rv,
        "labels": {SERVICE_LABEL: "shop.reviews"},
        "managedFields": [
            {
                "manager": FIELD_MANAGER,
                "operation": "Apply",
                "time": f"2026-12-05T00:00:{int(rv) % 60 if rv.isdigit() else 0:02d}Z",
                "fieldsV1": {"f:spec": {}},
            }
        ],
    }
    if uid is not None:
        meta["uid"] = uid
    return {"apiVersion": "networking.istio.io/v1", "kind": kind, "metadata": meta,
            "spec": {"ports": [{"number": port}]}}  # fmt: skip


def index_with(
    pool: BlobPool, *items: dict[str, Any], members: MemberPool | None = None
) -> OwnedIndex:
    index = OwnedIndex(pool, members)
    for kind in KINDS:
        index.replace(kind, [record_of(i) for i in items if i["kind"] == kind])
    return index


def without_time(item: dict[str, Any]) -> dict[str, Any]:
    out = compact(item)
    out["metadata"]["managedFields"] = [
        {k: v for k, v in e.items() if k != "time"} for e in out["metadata"]["managedFields"]
    ]
    return out


def test_the_same_object_in_ten_targets_is_held_once() -> None:
    pool = BlobPool()
    indexes = [
        index_with(pool, obj(SE, "a", rv=str(100 + t), uid=str(uuid.uuid4())),
                   obj(DR, "a", rv=str(200 + t), uid=str(uuid.uuid4())))
        for t in range(10)
    ]  # fmt: skip
    assert len(pool) == 2
    uids = {
        o["metadata"]["uid"]
        for ix in indexes
        for o in ix.owned("shop", "shop.reviews", KINDS) or []
    }
    assert len(uids) == 20  # each object keeps its own uid


def test_bodies_and_groups_of_changed_and_deleted_objects_are_released() -> None:
    pool, members = BlobPool(), MemberPool()
    first = index_with(pool, obj(SE, "a", rv="5", uid="u1"), members=members)
    second = index_with(pool, obj(SE, "a", rv="6", uid="u2"), members=members)
    assert len(pool) == 1 and len(members) == 1  # one group, held once for both targets
    first.apply_event("MODIFIED", record_of(obj(SE, "a", rv="7", uid="u1", port=81)))
    assert len(pool) == 2 and len(members) == 1
    second.apply_event("MODIFIED", record_of(obj(SE, "a", rv="8", uid="u2", port=81)))
    assert len(pool) == 1
    first.apply_event("ADDED", record_of(obj(DR, "a", rv="9", uid="u3")))
    assert len(members) == 2  # the group differs between the targets now
    first.apply_event("DELETED", record_of(obj(SE, "a", rv="10", uid="u1", port=81)))
    first.apply_event("DELETED", record_of(obj(DR, "a", rv="11", uid="u3")))
    second.replace(SE, [])
    assert len(pool) == 0 and len(members) == 0


@pytest.mark.parametrize(
    "item",
    [
        pytest.param(obj(SE, "a", rv="12345", uid=str(uuid.uuid4())), id="uuid-and-int-version"),
        pytest.param(obj(SE, "a", rv="0012", uid="not-a-uuid"), id="odd-uid-and-padded-version"),
        pytest.param(obj(DR, "a", rv="v7", uid=str(uuid.uuid4()).upper()), id="upper-case-uuid"),
        pytest.param(obj(DR, "a", rv="3", uid=None), id="no-uid"),
    ],
)
def test_objects_read_back_as_compacted(item: dict[str, Any]) -> None:
    index = index_with(BlobPool(), item)
    (held,) = index.owned("shop", "shop.reviews", KINDS) or []
    assert held == without_time(item)


def test_key_order_does_not_split_a_shared_body() -> None:
    pool = BlobPool()
    item = obj(SE, "a", rv="5", uid="u1")
    reordered = {k: item[k] for k in reversed(list(item))}
    reordered["metadata"] = {k: item["metadata"][k] for k in reversed(list(item["metadata"]))}
    index_with(pool, item)
    index_with(pool, reordered)
    assert len(pool) == 1


@pytest.mark.parametrize(
    ("version", "uid", "held_in_arrays"),
    [
        pytest.param(58964, uuid.uuid4().int, True, id="apiserver-ints"),
        pytest.param(0, 0, True, id="zeros"),
        pytest.param(2**63 - 1, 2**128 - 1, True, id="largest"),
        pytest.param(2**63, uuid.uuid4().int, False, id="version-past-int64"),
        pytest.param("a1", uuid.uuid4().int, False, id="version-not-an-int"),
        pytest.param(None, uuid.uuid4().int, False, id="no-version"),
        pytest.param(7, "not-a-uuid", False, id="uid-not-canonical"),
        pytest.param(7, "", False, id="no-uid"),
    ],
)
def test_version_and_uid_are_given_back_as_held(
    version: Version, uid: Uid, held_in_arrays: bool
) -> None:
    index = OwnedIndex()
    body = record_of(obj(SE, "a", rv="1", uid="u1")).body
    index.replace(SE, [Record("ServiceEntry/shop/a", "shop/shop.reviews", version, uid, body)])
    assert index._stamp(0) == (version, uid)
    assert (0 in index._odd) is not held_in_arrays


def test_slots_are_shared_by_targets_and_reused_once_free() -> None:
    slots = IdentSlots()
    first, second = OwnedIndex(slots=slots), OwnedIndex(slots=slots)
    first.replace(SE, [record_of(obj(SE, "a", rv="5", uid="u1"))])
    second.replace(SE, [record_of(obj(SE, "a", rv="6", uid="u2"))])
    assert len(slots) == 1  # one slot for the ident both targets hold
    first.replace(SE, [record_of(obj(SE, "b", rv="7", uid="u3"))])
    assert len(slots) == 2 and slots.size == 2
    second.replace(SE, [])
    first.replace(SE, [record_of(obj(SE, "c", rv="8", uid="u4"))])
    assert len(slots) == 1 and slots.size == 2  # "a" and "b" freed; "c" took a freed slot
    assert [o["metadata"]["name"] for o in first.owned("shop", "shop.reviews", [SE]) or []] == ["c"]
    assert len(first) == 1 and len(second) == 0

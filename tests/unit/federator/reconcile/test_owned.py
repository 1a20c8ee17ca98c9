"""The watch-fed index of owned objects: a reconcile after our own write sees that write,
watch events never move an object back, relists and disconnects are honoured, and a
reconcile lists (as before) whenever the index is not ready. No sockets."""

from __future__ import annotations

from typing import Any, cast

import pytest

from federator.core.model import FIELD_MANAGER, SERVICE_LABEL, ObjectRef, ServiceKey
from federator.kube.client import KubeClient, ListResult
from federator.kube.resources import AUTH_POLICIES, DESTINATION_RULES, SERVICE_ENTRIES
from federator.reconcile.owned import OwnedIndex, read_owned, record_of
from federator.reconcile.owned_codec import compact

SE, DR = "ServiceEntry", "DestinationRule"
KINDS = (SE, DR, "AuthorizationPolicy")
KEY = ServiceKey("shop", "reviews")
LABEL = "shop.reviews"


def obj(kind: str, name: str, rv: int, *, label: str = LABEL, port: int = 80) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": "shop",
            "uid": f"uid-{name}",
            "resourceVersion": str(rv),
            "labels": {SERVICE_LABEL: label},
            "managedFields": [
                {"manager": FIELD_MANAGER, "operation": "Apply", "fieldsV1": {"f:spec": {}}},
                {"manager": "kubectl", "operation": "Update", "fieldsV1": {"f:spec": {}}},
            ],
        },
        "spec": {"ports": [{"number": port}]},
        "status": {"validationMessages": ["big"]},
    }


def ready_index(*items: dict[str, Any]) -> OwnedIndex:
    index = OwnedIndex()
    for kind in KINDS:
        index.replace(kind, [record_of(i) for i in items if i["kind"] == kind])
    return index


def ports(index: OwnedIndex, label: str = LABEL) -> dict[tuple[str, str], int]:
    owned = index.owned("shop", label, KINDS)
    assert owned is not None
    return {(o["kind"], o["metadata"]["name"]): o["spec"]["ports"][0]["number"] for o in owned}


def test_compact_keeps_what_the_diff_reads() -> None:
    out = compact(obj(SE, "a", 5))
    assert "status" not in out
    assert [e["manager"] for e in out["metadata"]["managedFields"]] == [FIELD_MANAGER]
    assert out["metadata"]["uid"] == "uid-a"
    assert out["metadata"]["resourceVersion"] == "5"
    assert out["spec"] == {"ports": [{"number": 80}]}


def test_not_ready_until_every_kind_is_listed_and_after_a_disconnect() -> None:
    index = OwnedIndex()
    index.replace(SE, [record_of(obj(SE, "a", 5))])
    assert index.owned("shop", LABEL, [SE, DR]) is None
    index.replace(DR, [])
    assert index.owned("shop", LABEL, [SE, DR]) is not None
    index.disconnected(DR)
    assert index.owned("shop", LABEL, [SE, DR]) is None
    assert index.owned("shop", LABEL, [SE]) is not None


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        pytest.param(
            [("applied", obj(SE, "a", 9, port=81)), ("MODIFIED", obj(SE, "a", 7, port=70))],
            {(SE, "a"): 81},
            id="older-watch-event-after-our-apply-is-ignored",
        ),
        pytest.param(
            [("applied", obj(SE, "a", 9, port=81)), ("MODIFIED", obj(SE, "a", 11, port=82))],
            {(SE, "a"): 82},
            id="newer-watch-event-wins",
        ),
        pytest.param(
            [("MODIFIED", obj(SE, "a", 12, port=83)), ("applied", obj(SE, "a", 9, port=81))],
            {(SE, "a"): 83},
            id="older-apply-response-is-ignored",
        ),
        pytest.param(
            [("deleted", obj(SE, "a", 5)), ("MODIFIED", obj(SE, "a", 5, port=70))],
            {},
            id="event-from-before-our-delete-is-ignored",
        ),
        pytest.param(
            [
                ("deleted", obj(SE, "a", 5)),
                ("DELETED", obj(SE, "a", 6)),
                ("ADDED", obj(SE, "a", 8)),
            ],
            {(SE, "a"): 80},
            id="recreated-after-our-delete",
        ),
        pytest.param(
            [("deleted", obj(SE, "a", 5)), ("applied", obj(SE, "a", 8, port=84))],
            {(SE, "a"): 84},
            id="our-apply-after-our-delete",
        ),
        pytest.param(
            [("DELETED", obj(SE, "a", 6))],
            {},
            id="deleted-by-someone-else",
        ),
        pytest.param(
            [("ADDED", obj(DR, "b", 6))],
            {(SE, "a"): 80, (DR, "b"): 80},
            id="added",
        ),
    ],
)
def test_events_and_our_writes(
    events: list[tuple[str, dict[str, Any]]], expected: dict[tuple[str, str], int]
) -> None:
    index = ready_index(obj(SE, "a", 5))
    for what, item in events:
        if what == "applied":
            index.record([item], [])
        elif what == "deleted":
            ref = ObjectRef("c1", item["kind"], "shop", item["metadata"]["name"])
            index.record([], [(ref, item["metadata"]["resourceVersion"])])
        else:
            index.apply_event(what, record_of(item))
    assert ports(index) == expected


def test_relist_replaces_a_kind_and_a_label_change_moves_an_object() -> None:
    index = ready_index(obj(SE, "a", 5), obj(DR, "a", 5))
    index.apply_event("MODIFIED", record_of(obj(SE, "a", 6, label="shop.other")))
    assert ports(index) == {(DR, "a"): 80}
    assert ports(index, "shop.other") == {(SE, "a"): 80}
    index.replace(DR, [])  # gone during a watch gap
    assert ports(index) == {}
    assert len(index) == 1


class Lister:
    def __init__(self) -> None:
        self.calls: list[str] = []

    async def list(self, resource: Any, **_: Any) -> ListResult:
        self.calls.append(resource.kind)
        item = {"kind": resource.kind, "metadata": {"name": "listed"}}
        return ListResult(items=[item], resource_version="1")


RESOURCES = (SERVICE_ENTRIES, DESTINATION_RULES, AUTH_POLICIES)


@pytest.mark.parametrize(
    ("index", "key", "listed"),
    [
        pytest.param(ready_index(obj(SE, "a", 5)), KEY, False, id="ready-reads-the-index"),
        pytest.param(OwnedIndex(), KEY, True, id="not-ready-lists"),
        pytest.param(None, KEY, True, id="no-index-lists"),
        pytest.param(
            ready_index(obj(SE, "a", 5)), ServiceKey("shop", "egress.meshfed"), True, id="egress"
        ),
    ],
)
async def test_read_owned(index: OwnedIndex | None, key: ServiceKey, listed: bool) -> None:
    lister = Lister()
    items = await read_owned(index, cast(KubeClient, lister), key, RESOURCES, frozenset())
    assert bool(lister.calls) is listed
    names = {i["metadata"]["name"] for i in items}
    assert names == ({"listed"} if listed else {"a"})

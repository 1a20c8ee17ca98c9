"""The reconciler's drill hook: a running drill's drain and subsets change what a reconcile
writes in the drill's targets only, and a reconcile without the overlay restores it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from federator.core.drills.drain import drained_clusters
from federator.core.model import ClusterId
from federator.kube.client import KubeClient
from federator.metrics import FederatorMetrics
from federator.reconcile.drill_overlay import DrillOverlay
from federator.reconcile.reconciler import Reconciler
from federator.status import StatusRegistry
from tests.helpers.federator_builders import REVIEWS, cid, export, make_config, pods, view
from tests.unit.federator.core.drills.builders import drill
from tests.unit.federator.reconcile.test_reconciler_denied import FakeApiserver, FakeWorld

C1, C2, C3 = ClusterId("c1"), ClusterId("c2"), ClusterId("c3")
BY_REGION = {"": (C1, C2, C3)}


def _setup(overlays: list[DrillOverlay]) -> tuple[Reconciler, dict[ClusterId, FakeApiserver]]:
    config = make_config()
    servers = {c: FakeApiserver(c) for c in config.cluster_ids}
    world = FakeWorld(
        {
            cid("c1"): view("c1", [export("c1")], {REVIEWS: pods("10.1.0", 2)}),
            cid("c2"): view("c2", [export("c2")], {REVIEWS: pods("10.2.0", 1)}),
            cid("c3"): view("c3"),
        }
    )
    rec = Reconciler(
        config=config,
        world=world,
        clients=cast(Mapping[ClusterId, KubeClient], servers),
        metrics=FederatorMetrics(),
        status=StatusRegistry(clusters=config.cluster_ids),
        overlays=lambda: overlays,
    )
    return rec, servers


def _owned(server: FakeApiserver, kind: str) -> dict[str, Any]:
    found = [o for (k, _, name), o in server.objects.items() if k == kind and REVIEWS.name in name]
    assert len(found) == 1, server.objects.keys()
    return found[0]


def _endpoint_clusters(se: dict[str, Any]) -> set[str]:
    return {
        e.get("labels", {}).get("topology.istio.io/cluster", "")
        for e in se["spec"].get("endpoints") or []
    }


async def test_drain_overlay_withdraws_the_cluster_in_targets_only() -> None:
    spec = drill({"drain": {"clusters": ["c1"]}})
    overlays = [DrillOverlay(spec, frozenset({C3}), drained_clusters(spec, 0, BY_REGION))]
    rec, servers = _setup(overlays)
    await rec.reconcile(REVIEWS)
    assert "c1" not in _endpoint_clusters(_owned(servers[C3], "ServiceEntry"))
    assert "c1" in _endpoint_clusters(_owned(servers[C2], "ServiceEntry"))  # not a target
    overlays.clear()
    await rec.reconcile(REVIEWS)
    assert "c1" in _endpoint_clusters(_owned(servers[C3], "ServiceEntry"))


async def test_subsets_overlay_adds_the_drill_subsets_to_the_destination_rule() -> None:
    spec = drill({"shift": {"destinations": [{"cluster": "c1", "weight": 50},
                                             {"cluster": "c2", "weight": 50}]}})  # fmt: skip
    overlays = [DrillOverlay(spec, frozenset({C1, C2, C3}))]
    rec, servers = _setup(overlays)
    await rec.reconcile(REVIEWS)
    dr = _owned(servers[C3], "DestinationRule")
    assert [s["name"] for s in dr["spec"]["subsets"]] == ["cluster-c1", "cluster-c2"]
    assert dr["spec"]["trafficPolicy"]["tls"]["mode"] == "ISTIO_MUTUAL"  # the federated DR kept
    overlays.clear()
    await rec.reconcile(REVIEWS)
    assert "subsets" not in _owned(servers[C3], "DestinationRule")["spec"]

"""The last propagation latency per service and target: measured by the reconciler on the
write that followed an observed change, kept across reconciles that write nothing, and served
by the status API as ``TargetApply.last_propagation_seconds`` (the console's matrix shows it).

The real ``Reconciler`` runs against the in-memory apiservers of the refusal tests.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any, cast

import pytest

from federator.api import convert
from federator.core.diff import Op
from federator.core.model import ClusterId, ObjectRef
from federator.kube.client import KubeClient
from federator.metrics import FederatorMetrics
from federator.reconcile.apply import ApplyOutcome
from federator.reconcile.outcome import Tally
from federator.reconcile.reconciler import Reconciler
from federator.status import ServiceStatus, StatusRegistry
from tests.helpers.federator_builders import REVIEWS, T0, cid, make_config
from tests.unit.federator.drillctl.samples import run
from tests.unit.federator.reconcile.test_reconciler_denied import (
    FakeApiserver,
    FakeWorld,
    exporting,
    exporting_nothing,
)

pytestmark = pytest.mark.unit
TARGETS = ["c1", "c2", "c3"]
REF = ObjectRef(cid("c2"), "ServiceEntry", "default", "reviews")


class Federation:
    def __init__(self) -> None:
        config = make_config()
        self.world = FakeWorld(exporting())
        self.servers = {c: FakeApiserver(c) for c in config.cluster_ids}
        self.status = StatusRegistry(clusters=config.cluster_ids)
        self.metrics = FederatorMetrics()
        self.reconciler = Reconciler(
            config=config,
            world=self.world,
            clients=cast(Mapping[ClusterId, KubeClient], self.servers),
            metrics=self.metrics,
            status=self.status,
        )

    def latest(self) -> dict[str, float]:
        status = self.status.service(REVIEWS)
        assert status is not None
        return {str(c): v for c, v in status.last_propagation.items()}

    def samples(self, target: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "meshfed_federator_propagation_latency_seconds_count", {"target": target}
        )
        return value or 0.0


async def test_a_write_after_an_observed_change_records_its_latency_per_target() -> None:
    fed = Federation()
    observed = time.monotonic() - 2.0  # the watch saw the change two seconds ago
    await fed.reconciler.reconcile(REVIEWS, observed_at=observed)
    latest = fed.latest()
    # Every target got the ServiceEntry/DestinationRule written (c1 its own export's too).
    assert sorted(latest) == TARGETS
    for target, seconds in latest.items():
        assert 2.0 <= seconds < 10.0, (target, seconds)
        assert fed.samples(target) == 1.0  # the same measurement as the histogram's


async def test_a_resync_that_writes_nothing_keeps_the_last_latency() -> None:
    fed = Federation()
    await fed.reconciler.reconcile(REVIEWS, observed_at=time.monotonic() - 1.0)
    before = fed.latest()
    await fed.reconciler.reconcile(REVIEWS)  # a resync: nothing changed, nothing written
    assert fed.latest() == before
    assert fed.samples("c2") == 1.0


async def test_a_repair_without_an_observed_change_has_no_latency() -> None:
    fed = Federation()
    await fed.reconciler.reconcile(REVIEWS)  # first write from a resync (start-up)
    assert fed.latest() == {}
    assert fed.samples("c2") == 0.0


async def test_only_targets_written_after_the_change_get_a_new_latency() -> None:
    fed = Federation()
    await fed.reconciler.reconcile(REVIEWS, observed_at=time.monotonic() - 5.0)
    first = fed.latest()
    fed.world.unwritable.add(cid("c3"))  # c3 is not synced: skipped this time
    fed.world.current = exporting_nothing()  # c1 stops exporting: prune in c1 and c2
    await fed.reconciler.reconcile(REVIEWS, observed_at=time.monotonic() - 0.5)
    status = fed.status.service(REVIEWS)
    if status is None:  # nothing left anywhere writable and c3 still imports: kept listed
        pytest.fail("reviews vanished from the status while c3 still holds its objects")
    latest = fed.latest()
    assert latest["c3"] == first["c3"]
    for target in ("c1", "c2"):
        assert 0.5 <= latest[target] < first[target], target


@pytest.mark.parametrize(
    ("latency", "expected"),
    [
        pytest.param(0.25, 0.25, id="written-after-a-change"),
        pytest.param(None, None, id="never-after-a-change"),
    ],
)
def test_tally_keeps_a_targets_latency(latency: float | None, expected: float | None) -> None:
    tally = Tally(key=REVIEWS)
    tally.add(cid("c2"), ApplyOutcome(written=[(REF, Op.UPDATE)]), latency)
    assert tally.last_propagation.get(cid("c2")) == expected
    assert cid("c2") in tally.last_applied


def test_status_api_serves_the_latency_per_target() -> None:
    service = ServiceStatus(
        key=REVIEWS,
        last_applied={cid("c1"): T0, cid("c2"): T0},
        last_propagation={cid("c2"): 0.375, cid("c3"): 1.5},
    )
    msg = convert.service_to_pb(service, host_suffix="clusterset.local", include_endpoints=False)
    by_cluster = {t.cluster: t for t in msg.targets}
    assert sorted(by_cluster) == TARGETS
    assert not by_cluster["c1"].HasField("last_propagation_seconds")
    assert by_cluster["c2"].last_propagation_seconds == 0.375
    assert by_cluster["c2"].HasField("last_applied_time")
    assert by_cluster["c3"].last_propagation_seconds == 1.5
    assert not by_cluster["c3"].HasField("last_applied_time")


def test_drill_summary_carries_the_object_without_managed_fields() -> None:
    doc, journal = run(breach_after=20.0)
    doc["metadata"]["managedFields"] = [{"manager": "meshfed-drill-cli"}]
    msg = convert.drill_to_pb(doc)
    back: dict[str, Any] = json.loads(msg.object_json)
    assert "managedFields" not in back["metadata"]
    assert back["metadata"]["name"] == "drill-1"
    assert back["spec"] == doc["spec"]
    assert len(back["status"]["events"]) == len(journal.events)

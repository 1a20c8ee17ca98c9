"""The reconciler under leader election: a standby reconciles nothing, and a replica that
stops leading between its diff and its writes sends none (the batch fence, R5)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

from federator.core.model import ClusterId
from federator.errors import NotLeaderError
from federator.kube.client import KubeClient
from federator.metrics import FederatorMetrics
from federator.reconcile.outcome import Result
from federator.reconcile.reconciler import Reconciler
from federator.status import StatusRegistry
from tests.helpers.federator_builders import REVIEWS, make_config
from tests.unit.federator.reconcile.test_reconciler_denied import (
    FakeApiserver,
    FakeWorld,
    exporting,
)


def reconciler(leading: list[bool]) -> tuple[Reconciler, dict[str, FakeApiserver]]:
    """``leading``: the answers to successive "may I write?" questions (the last repeats)."""
    config = make_config()
    servers = {c: FakeApiserver(c) for c in config.cluster_ids}

    def ask() -> bool:
        return leading.pop(0) if len(leading) > 1 else leading[0]

    return (
        Reconciler(
            config=config,
            world=FakeWorld(exporting()),
            clients=cast(Mapping[ClusterId, KubeClient], servers),
            metrics=FederatorMetrics(),
            status=StatusRegistry(clusters=config.cluster_ids),
            leading=ask,
        ),
        servers,
    )


async def test_a_standby_reconciles_nothing() -> None:
    rec, servers = reconciler([False])
    assert await rec.reconcile(REVIEWS) == Result()
    assert sum(s.writes for s in servers.values()) == 0


async def test_leadership_lost_before_the_write_batch_sends_nothing() -> None:
    rec, servers = reconciler([True, False])  # leads at the start, not at the batch
    result = await rec.reconcile(REVIEWS)
    assert isinstance(result.retryable, NotLeaderError)
    assert sum(s.writes for s in servers.values()) == 0


async def test_the_leader_writes() -> None:
    rec, servers = reconciler([True])
    assert await rec.reconcile(REVIEWS) == Result()
    assert sum(s.writes for s in servers.values()) > 0

"""The sources' key bookkeeping and the status reporter's readiness rule, over real caches
filled by hand (no watches, no sockets)."""

from __future__ import annotations

from typing import Any

from federator.core.config import ClusterSettings, KubeconfigFile
from federator.core.diff import Plan
from federator.core.mapping import ENDPOINT_SLICES, NAMESPACES, SERVICE_EXPORTS, SERVICES
from federator.core.model import ClusterId, ServiceKey
from federator.metrics import FederatorMetrics
from federator.reactor.cache import ClusterCache
from federator.reactor.reporter import ReporterSettings, StatusReporter
from federator.reactor.sources import Sources
from federator.reconcile.imported import ImportedIndex
from federator.status import StatusRegistry
from tests.helpers.federator_builders import make_config

C1, C2 = ClusterId("c1"), ClusterId("c2")
REVIEWS, GONE = ServiceKey("default", "reviews"), ServiceKey("shop", "gone")


def cache(name: ClusterId, *services: dict[str, Any], synced: bool = True) -> ClusterCache:
    out = ClusterCache(settings=ClusterSettings(name=name, kubeconfig=KubeconfigFile(path="k")))
    if synced:
        for kind in (SERVICE_EXPORTS, NAMESPACES, ENDPOINT_SLICES):
            out.replace(kind, [])
        out.replace(SERVICES, list(services))
    return out


def exported(namespace: str, name: str) -> dict[str, Any]:
    meta = {"name": name, "namespace": namespace, "labels": {"meshfed.io/export": "true"}}
    return {"metadata": meta, "spec": {"ports": [{"name": "http", "port": 80}]}}


class Sink:
    def __init__(self) -> None:
        self.keys: list[ServiceKey] = []
        self.background: list[bool] = []

    def add(
        self, key: ServiceKey, *, observed_at: float | None = None, background: bool = False
    ) -> bool:
        self.keys.append(key)
        self.background.append(background)
        return True


async def test_every_key_includes_what_was_written_but_is_no_longer_exported() -> None:
    sink = Sink()
    imported = ImportedIndex((C1, C2))
    imported.add(C2, GONE)
    sources = Sources(
        config=make_config(names=("c1", "c2")),
        clients={},
        caches={C1: cache(C1, exported("default", "reviews")), C2: cache(C2)},
        imported=imported,
        sink=sink,
        metrics=FederatorMetrics(),
    )
    assert sources.all_keys() == {REVIEWS, GONE}
    sources.enqueue_all()
    assert sorted(sink.keys) == sorted([REVIEWS, GONE])
    assert sink.background == [True, True]  # a full pass waits behind changed keys
    await sources.restart(C1)  # not started: nothing to restart, nothing offered
    assert len(sink.keys) == 2
    await sources.shutdown()


async def no_plan() -> Plan:
    return Plan(clusters=())


def reporter(
    caches: dict[ClusterId, ClusterCache], grace: float
) -> tuple[StatusReporter, StatusRegistry]:
    status = StatusRegistry(clusters=tuple(caches))
    rep = StatusReporter(
        caches=caches,
        imported=ImportedIndex(caches),
        status=status,
        metrics=FederatorMetrics(),
        planner=no_plan,
        settings=ReporterSettings(tick_seconds=3600, ready_grace_seconds=grace),
    )
    return rep, status


async def test_unreachable_cluster_holds_readiness_back_only_during_the_grace() -> None:
    down = cache(C2, synced=False)
    down.mark_disconnected(SERVICES, "connection refused")
    for grace, ready in ((3600.0, False), (0.0, True)):
        rep, status = reporter({C1: cache(C1), C2: down}, grace)
        await rep.start()
        rep.refresh()
        assert status.ready is ready
        c2 = status.cluster("c2")
        assert c2 is not None and c2.stale and not c2.reachable
        assert c2.error == "connection refused"
        await rep.shutdown()
        await rep.shutdown()


async def test_a_cluster_not_listed_yet_keeps_the_federator_unready() -> None:
    rep, status = reporter({C1: cache(C1), C2: cache(C2, synced=False)}, 0.0)
    await rep.start()
    rep.refresh()
    assert not status.ready  # no error yet: it may still come, so wait for it
    await rep.shutdown()

"""Unit tests of the reactor: raw object conversion, event -> key mapping, the cache, backoff
and the work queue (no sockets; the queue runs on the test's event loop)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from federator.core import convert
from federator.core.backoff import BackoffSettings
from federator.core.config import ClusterSettings, GatewaySettings, KubeconfigFile
from federator.core.mapping import (
    ENDPOINT_SLICES,
    NAMESPACES,
    SERVICE_EXPORTS,
    SERVICES,
    affected_by,
)
from federator.core.model import ClusterId, Endpoint, ExportVia, ServiceKey, Topology
from federator.reactor.cache import ClusterCache
from federator.reactor.workqueue import WorkQueue

KEY = ServiceKey("default", "reviews")
GW = GatewaySettings()


def service(
    name: str = "reviews",
    *,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    created: str = "2024-01-02T00:00:00Z",
    namespace: str = "default",
    rv: str = "1",
    lb: str | None = None,
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels if labels is not None else {"meshfed.io/export": "true"},
            "annotations": annotations or {},
            "creationTimestamp": created,
            "resourceVersion": rv,
        },
        "spec": {"ports": [{"name": "http", "port": 9080, "protocol": "TCP", "targetPort": 9080}]},
    }
    if lb:
        obj["status"] = {"loadBalancer": {"ingress": [{"ip": lb}]}}
    return obj


def export(created: str = "2024-01-01T00:00:00Z") -> dict[str, Any]:
    return {"metadata": {"name": "reviews", "namespace": "default", "creationTimestamp": created}}


def eps(name: str, *addrs: tuple[str, bool | None], svc: str = "reviews") -> dict[str, Any]:
    endpoints = []
    for addr, ready in addrs:
        ep: dict[str, Any] = {"addresses": [addr], "zone": "z1"}
        if ready is not None:
            ep["conditions"] = {"ready": ready}
        endpoints.append(ep)
    return {
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": {"kubernetes.io/service-name": svc},
            "resourceVersion": "1",
        },
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 9080}],
        "endpoints": endpoints,
    }


@pytest.mark.parametrize(
    ("svc", "exp", "via", "when"),
    [
        pytest.param(service(), None, ExportVia.LABEL, "2024-01-02", id="label"),
        pytest.param(
            service(labels={}),
            export(),
            ExportVia.SERVICE_EXPORT,
            "2024-01-01",
            id="serviceexport-alone",
        ),
        pytest.param(service(), export(), ExportVia.BOTH, "2024-01-01", id="both-older-wins"),
    ],
)
def test_exported_service(svc: dict[str, Any], exp: Any, via: ExportVia, when: str) -> None:
    result = convert.exported_service(ClusterId("c1"), svc, exp)
    assert result is not None and result.via is via
    assert result.exported_at == datetime.fromisoformat(when).replace(tzinfo=UTC)
    assert result.ports[0].name == "http" and result.ports[0].port == 9080


@pytest.mark.parametrize(
    ("svc", "exp"),
    [
        pytest.param(service(labels={}), None, id="not-labelled"),
        pytest.param(None, export(), id="serviceexport-without-service"),
        pytest.param({**service(), "spec": {"type": "ExternalName"}}, None, id="externalname"),
    ],
)
def test_not_exported(svc: Any, exp: Any) -> None:
    assert convert.exported_service(ClusterId("c1"), svc, exp) is None


@pytest.mark.parametrize(
    ("value", "topology", "has_error"),
    [
        pytest.param(None, None, False, id="absent"),
        pytest.param("vpn", Topology.VPN, False, id="vpn"),
        pytest.param("Gateway", Topology.GATEWAY, False, id="case-insensitive"),
        pytest.param("mesh", None, True, id="invalid"),
    ],
)
def test_parse_topology(value: Any, topology: Topology | None, has_error: bool) -> None:
    got, error = convert.parse_topology(value)
    assert got is topology and (error is not None) is has_error


def test_endpoints_merge_slices_and_readiness() -> None:
    slices = [
        eps("a", ("10.0.0.2", None), ("10.0.0.1", False)),
        eps("b", ("10.0.0.1", True), ("10.0.0.3", False)),
    ]
    assert convert.endpoints_from_slices(slices) == (
        Endpoint.of("10.0.0.1", {"http": 9080}, ready=True, zone="z1"),
        Endpoint.of("10.0.0.2", {"http": 9080}, ready=True, zone="z1"),
        Endpoint.of("10.0.0.3", {"http": 9080}, ready=False, zone="z1"),
    )


def test_gateway_addresses_match_selector() -> None:
    gw = service(
        "eastwest", namespace="istio-system", labels={"istio": "eastwestgateway"}, lb="192.0.2.9"
    )
    other = service("other", namespace="istio-system", labels={"istio": "ingress"}, lb="192.0.2.8")
    assert convert.gateway_addresses([gw, other], GW) == ("192.0.2.9",)


@pytest.mark.parametrize(
    ("kind", "obj", "keys", "namespaces", "whole"),
    [
        pytest.param(SERVICES, service(), {KEY}, set(), False, id="service"),
        pytest.param(SERVICE_EXPORTS, export(), {KEY}, set(), False, id="serviceexport"),
        pytest.param(
            ENDPOINT_SLICES, eps("x-1", ("10.0.0.1", True)), {KEY}, set(), False, id="slice"
        ),
        pytest.param(
            ENDPOINT_SLICES,
            {"metadata": {"name": "orphan"}},
            set(),
            set(),
            False,
            id="unlabelled-slice",
        ),
        pytest.param(
            NAMESPACES, {"metadata": {"name": "team"}}, set(), {"team"}, False, id="namespace"
        ),
        pytest.param(
            SERVICES,
            service("eastwest", namespace="istio-system", labels={"istio": "eastwestgateway"}),
            {ServiceKey("istio-system", "eastwest")},
            set(),
            True,
            id="gateway-service",
        ),
    ],
)
def test_mapping(
    kind: str, obj: Any, keys: set[ServiceKey], namespaces: set[str], whole: bool
) -> None:
    got = affected_by(kind, obj, gateway=GW)
    assert (got.keys, got.namespaces, got.whole_cluster) == (keys, namespaces, whole)


def _cache() -> ClusterCache:
    return ClusterCache(
        settings=ClusterSettings(name=ClusterId("c1"), kubeconfig=KubeconfigFile(path="k"))
    )


def test_cache_relist_removes_objects_deleted_during_gap() -> None:
    cache = _cache()
    for kind in (SERVICES, SERVICE_EXPORTS, NAMESPACES):
        cache.replace(kind, [])
    cache.replace(ENDPOINT_SLICES, [eps("reviews-1", ("10.0.0.1", True))])
    cache.apply_event(SERVICES, "ADDED", service())
    assert cache.synced and cache.healthy and cache.exported_keys() == {KEY}
    assert len(cache.view().endpoints[KEY]) == 1
    affected = cache.replace(ENDPOINT_SLICES, [])
    assert affected.keys == {KEY} and cache.view().endpoints[KEY] == ()


def test_cache_keeps_content_when_disconnected() -> None:
    cache = _cache()
    for kind in (SERVICE_EXPORTS, NAMESPACES, ENDPOINT_SLICES):
        cache.replace(kind, [])
    cache.replace(SERVICES, [service()])
    cache.mark_disconnected(SERVICES, "connection refused")
    view = cache.view()
    assert view.synced and not view.healthy and not view.trusted
    assert KEY in view.exported


@pytest.mark.parametrize(
    ("labels", "exported"),
    [
        pytest.param({"meshfed.io/export": "false"}, set(), id="label-turned-off"),
        pytest.param({}, set(), id="label-removed"),
        pytest.param({"meshfed.io/export": "true", "app": "r"}, {KEY}, id="other-label-added"),
    ],
)
def test_cache_follows_the_export_label(labels: dict[str, str], exported: set[Any]) -> None:
    """The cache indexes labelled Services as they change (it does not decode every Service
    to find them), and the memoised exported keys follow each change."""
    cache = _cache()
    for kind in (SERVICE_EXPORTS, NAMESPACES, ENDPOINT_SLICES):
        cache.replace(kind, [])
    cache.replace(SERVICES, [service()])
    assert cache.exported_keys() == {KEY} == cache.candidate_keys()
    cache.apply_event(SERVICES, "MODIFIED", service(labels=labels, rv="2"))
    assert cache.exported_keys() == exported == cache.candidate_keys()
    cache.apply_event(SERVICES, "DELETED", service(labels=labels, rv="3"))
    assert cache.exported_keys() == set() == cache.candidate_keys()


def test_cache_relist_of_unchanged_objects_touches_nothing() -> None:
    cache = _cache()
    for kind in (SERVICE_EXPORTS, NAMESPACES):
        cache.replace(kind, [])
    slices = [eps("reviews-1", ("10.0.0.1", True), ("10.0.0.2", False))]
    cache.replace(SERVICES, [service()])
    cache.replace(ENDPOINT_SLICES, slices)
    before = cache.view()
    assert not cache.replace(SERVICES, [service()])
    assert not cache.replace(ENDPOINT_SLICES, slices)
    assert cache.view() == before
    assert cache.replace(SERVICES, [service(rv="2")]).keys == {KEY}


def test_backoff_grows_and_caps() -> None:
    settings = BackoffSettings(base=1.0, cap=8.0, jitter=0.2)
    delays = [settings.delay(n, uniform=lambda a, b: 1.0) for n in range(1, 7)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert settings.delay(3, uniform=lambda a, b: a) == pytest.approx(3.2)


async def test_workqueue_dedups_and_serialises_per_key() -> None:
    q: WorkQueue[str] = WorkQueue(max_size=10)
    assert q.add("a") and q.add("a") and q.add("b")
    assert len(q) == 2
    first = await q.get()
    assert first == "a"
    q.add("a")  # while processing: dirty, not handed out twice
    assert await q.get() == "b"
    assert len(q) == 0
    q.done("a")
    assert await q.get() == "a"


@pytest.mark.parametrize(
    ("adds", "order"),
    [
        pytest.param([("a", True), ("b", True), ("c", False)], ["c", "a", "b"], id="changed-first"),
        pytest.param([("a", True), ("b", True), ("b", False)], ["b", "a"], id="changed-moves-up"),
        pytest.param([("a", False), ("b", True), ("a", True)], ["a", "b"], id="never-moves-down"),
        pytest.param([("a", True), ("b", False), ("c", False)], ["b", "c", "a"], id="fifo-within"),
    ],
)
async def test_workqueue_hands_out_changed_keys_before_background_ones(
    adds: list[tuple[str, bool]], order: list[str]
) -> None:
    q: WorkQueue[str] = WorkQueue(max_size=10)
    for key, background in adds:
        assert q.add(key, background=background)
    assert len(q) == len(order)
    got = []
    for _ in order:
        got.append(await q.get())
        q.done(got[-1])  # a background key is not handed out while a change is in flight
    assert got == order
    assert len(q) == 0


@pytest.mark.parametrize(
    ("background_adds", "then_first"),
    [
        pytest.param([True], "b", id="background-only-stays-background"),
        pytest.param([True, False], "a", id="a-change-meanwhile-goes-first"),
    ],
)
async def test_workqueue_dirty_key_keeps_its_priority(
    background_adds: list[bool], then_first: str
) -> None:
    q: WorkQueue[str] = WorkQueue(max_size=10)
    q.add("a")
    assert await q.get() == "a"
    for background in background_adds:
        q.add("a", background=background)  # while processing
    q.add("b", background=True)
    q.done("a")
    assert await q.get() == then_first


@pytest.mark.parametrize(
    ("limit", "second"),
    [
        pytest.param(1, "c", id="limit-reached-a-change-still-goes"),
        pytest.param(2, "b", id="under-the-limit"),
        pytest.param(None, "b", id="no-limit"),
    ],
)
async def test_workqueue_caps_background_keys_in_progress(limit: int | None, second: str) -> None:
    q: WorkQueue[str] = WorkQueue(max_size=10, background_limit=limit)
    q.add("a", background=True)
    q.add("b", background=True)
    assert await q.get() == "a"
    waiting = asyncio.create_task(q.get())
    await asyncio.sleep(0.01)
    q.add("c")  # a change, while "a" (background) is processed
    assert await asyncio.wait_for(waiting, 1) == second
    if second == "c":
        blocked = asyncio.create_task(q.get())
        await asyncio.sleep(0.01)
        assert not blocked.done()  # "b" waits for the background slot
        q.done("a")
        await asyncio.sleep(0.01)
        assert not blocked.done()  # ... and for the change "c" to finish
        q.done("c")
        assert await asyncio.wait_for(blocked, 1) == "b"


@pytest.mark.parametrize(
    ("change_done_first", "order"),
    [
        pytest.param(True, ["b"], id="background-after-the-change"),
        pytest.param(False, [], id="background-waits-while-a-change-runs"),
    ],
)
async def test_workqueue_background_waits_for_changes_in_flight(
    change_done_first: bool, order: list[str]
) -> None:
    q: WorkQueue[str] = WorkQueue(max_size=10, background_limit=2)
    q.add("c")
    q.add("b", background=True)
    assert await q.get() == "c"  # a change is being processed
    waiting = asyncio.create_task(q.get())
    await asyncio.sleep(0.01)
    assert not waiting.done()  # a free background slot, but a change is in flight
    if change_done_first:
        q.done("c")
    await asyncio.sleep(0.01)
    assert ([waiting.result()] if waiting.done() else []) == order
    if not change_done_first:
        q.add("d")  # another change goes first, even now
        assert await asyncio.wait_for(waiting, 1) == "d"
    q.shutdown()


async def test_workqueue_bounded_counts_drops() -> None:
    q: WorkQueue[int] = WorkQueue(max_size=2)
    assert q.add(1) and q.add(2)
    assert not q.add(3)
    assert q.drops == 1


async def test_workqueue_requeue_with_backoff_and_forget() -> None:
    q: WorkQueue[str] = WorkQueue(backoff=BackoffSettings(base=0.01, cap=0.05, jitter=0.0))
    q.add("k")
    key = await q.get()
    q.done(key)
    assert q.requeue(key) == pytest.approx(0.01)
    assert not q.idle
    assert await asyncio.wait_for(q.get(), timeout=2) == "k"
    q.done("k")
    assert q.requeue("k") == pytest.approx(0.02)
    q.forget("k")
    assert q.failures("k") == 0
    q.shutdown()

"""Refused writes in a target cluster (S6): reported as conditions, tracked until pruned, retried
slowly only when RBAC denied them.

The real ``Reconciler`` (desired -> render -> diff -> apply) runs against in-memory target
apiservers that answer like Kubernetes does - 403 with RBAC's message for a denied verb, 422
for an invalid object, 503 when unavailable - so these tests need no sockets; what follows a
result is the controller's ``next_step`` (the policy the workers apply).
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
from collections.abc import Iterable, Mapping
from typing import Any, cast

import pytest

from federator.core.config import FederationConfig
from federator.core.model import ClusterId, ClusterView, ObjectRef, ServiceKey
from federator.errors import ApiPermanentError, ApiRetryableError
from federator.kube.client import KubeClient, ListResult
from federator.kube.resources import WRITTEN, Resource
from federator.metrics import FederatorMetrics
from federator.reactor.controller import ERROR, ControllerSettings, Step, next_step
from federator.reconcile.apply import Refusal
from federator.reconcile.outcome import Result, refusal_condition
from federator.reconcile.reconciler import Reconciler
from federator.status import FORBIDDEN, REFUSED, RefusalCondition, StatusRegistry
from tests.helpers.federator_builders import REVIEWS, cid, export, make_config, pods, view

ACCOUNT = "system:serviceaccount:meshfed-system:meshfed-federator"
KINDS = ("DestinationRule", "ServiceEntry")
DENIED_RETRY_SECONDS = ControllerSettings().denied_retry_seconds


class FakeApiserver:
    """The few verbs the reconciler uses, over a dict, with RBAC denials and failures."""

    def __init__(self, cluster: str) -> None:
        self.cluster = ClusterId(cluster)
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.denied: set[tuple[str, str]] = set()
        """(verb, kind) pairs RBAC refuses."""
        self.invalid: set[str] = set()
        """Kinds whose applies fail validation (422)."""
        self.unavailable = False
        self.writes = 0
        self._versions = itertools.count(1)

    def _check(self, verb: str, kind: str, namespace: str, name: str) -> None:
        what = f"{verb} {kind} {namespace}/{name} in {self.cluster}"
        if self.unavailable:
            raise ApiRetryableError(f"{what}: HTTP 503: unavailable", status=503)
        if (verb, kind) in self.denied:
            plural = WRITTEN[kind].plural
            raise ApiPermanentError(
                f'{what}: HTTP 403: {plural}.networking.istio.io "{name}" is forbidden: User '
                f'"{ACCOUNT}" cannot {verb} resource "{plural}" in API group '
                f'"networking.istio.io" in the namespace "{namespace}"',
                status=403,
            )

    async def list(
        self, resource: Resource, *, label_selector: str | None = None, **_: Any
    ) -> ListResult:
        self._check("list", resource.kind, "", "")
        wanted = dict(p.split("=", 1) for p in (label_selector or "").split(",") if p)
        items = [
            copy.deepcopy(obj)
            for (kind, _ns, _name), obj in sorted(self.objects.items())
            if kind == resource.kind
            and all(obj["metadata"].get("labels", {}).get(k) == v for k, v in wanted.items())
        ]
        return ListResult(items=items, resource_version=str(next(self._versions)))

    async def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        meta = manifest["metadata"]
        self._check("patch", manifest["kind"], meta["namespace"], meta["name"])
        self.writes += 1
        if manifest["kind"] in self.invalid:
            raise ApiPermanentError(f"apply {manifest['kind']}: HTTP 422: invalid", status=422)
        obj = copy.deepcopy(dict(manifest))
        obj["metadata"]["uid"] = f"uid-{meta['name']}"
        obj["metadata"]["resourceVersion"] = str(next(self._versions))
        self.objects[(manifest["kind"], meta["namespace"], meta["name"])] = obj
        return obj

    async def delete(
        self, resource: Resource, namespace: str, name: str, *, uid: str, resource_version: str
    ) -> bool:
        self._check("delete", resource.kind, namespace, name)
        self.writes += 1
        return self.objects.pop((resource.kind, namespace, name), None) is not None

    async def create_event(self, **_: Any) -> None:
        return None

    def kinds(self) -> tuple[str, ...]:
        return tuple(sorted(kind for kind, _, _ in self.objects))


class FakeWorld:
    def __init__(self, views: Mapping[ClusterId, ClusterView]) -> None:
        self.current = dict(views)
        self.unwritable: set[ClusterId] = set()

    def views(self, keys: Iterable[ServiceKey] | None) -> dict[ClusterId, ClusterView]:
        return dict(self.current)

    def service_object(self, cluster: ClusterId, key: ServiceKey) -> Mapping[str, Any] | None:
        return None

    def writable(self, cluster: ClusterId) -> bool:
        return cluster not in self.unwritable


def exporting() -> dict[ClusterId, ClusterView]:
    """reviews exported from c1 only: c2 and c3 import it."""
    return {
        cid("c1"): view("c1", [export("c1")], {REVIEWS: pods("10.1.0", 2)}),
        cid("c2"): view("c2"),
        cid("c3"): view("c3"),
    }


def exporting_nothing() -> dict[ClusterId, ClusterView]:
    return {cid(c): view(c) for c in ("c1", "c2", "c3")}


class Federation:
    def __init__(self, config: FederationConfig | None = None) -> None:
        self.config = config or make_config()
        self.world = FakeWorld(exporting())
        self.servers = {c: FakeApiserver(c) for c in self.config.cluster_ids}
        self.status = StatusRegistry(clusters=self.config.cluster_ids)
        self.metrics = FederatorMetrics()
        self.reconciler = Reconciler(
            config=self.config,
            world=self.world,
            clients=cast(Mapping[ClusterId, KubeClient], self.servers),
            metrics=self.metrics,
            status=self.status,
        )

    async def reconcile(self) -> Result:
        return await self.reconciler.reconcile(REVIEWS)

    def step(self, result: Result) -> Step:
        """What the controller does after ``result`` (with this federation's resync period)."""
        denied = min(DENIED_RETRY_SECONDS, self.config.resync_period_seconds)
        return next_step(result, denied_retry_seconds=denied)

    def refusals(self) -> list[tuple[str, str, str, str]]:
        status = self.status.service(REVIEWS)
        conditions = () if status is None else status.conditions
        return [
            (c.cluster, str(c.reason), c.verb, c.kind)
            for c in conditions
            if isinstance(c, RefusalCondition)
        ]


async def imported_then_unexported(*, deny_delete_in: str) -> Federation:
    """reviews imported into c2 and c3, then c1 stops exporting while c2 denies delete."""
    fed = Federation()
    assert await fed.reconcile() == Result()
    assert fed.servers[cid("c2")].kinds() == KINDS
    for kind in KINDS:
        fed.servers[cid(deny_delete_in)].denied.add(("delete", kind))
    fed.world.current = exporting_nothing()
    return fed


async def test_denied_delete_is_a_condition_keeps_the_object_and_requeues_slowly() -> None:
    fed = await imported_then_unexported(deny_delete_in="c2")
    result = await fed.reconcile()
    assert fed.step(result) == Step(ERROR, requeue=True, at_least=DENIED_RETRY_SECONDS)
    assert result.refused is not None and "HTTP 403" in str(result.refused)
    assert fed.servers[cid("c2")].kinds() == KINDS  # nothing deleted in c2
    assert fed.servers[cid("c3")].kinds() == ()  # pruned where allowed
    assert fed.refusals() == [("c2", FORBIDDEN, "delete", kind) for kind in KINDS]
    status = fed.status.service(REVIEWS)
    assert status is not None
    messages = [c.message for c in status.conditions if isinstance(c, RefusalCondition)]
    assert all(f'User "{ACCOUNT}" cannot delete resource' in m for m in messages)
    assert fed.reconciler.imported.holds(cid("c2"), REVIEWS)  # a resync comes back for it
    assert not fed.reconciler.imported.holds(cid("c3"), REVIEWS)


async def test_leftover_is_pruned_and_condition_cleared_once_delete_is_allowed() -> None:
    fed = await imported_then_unexported(deny_delete_in="c2")
    await fed.reconcile()
    fed.servers[cid("c2")].denied.clear()
    assert await fed.reconcile() == Result()
    assert fed.servers[cid("c2")].kinds() == ()
    assert not fed.reconciler.imported.holds(cid("c2"), REVIEWS)
    assert fed.status.service(REVIEWS) is None  # nothing exported or imported any more


@pytest.mark.parametrize(
    "interruption",
    [
        pytest.param("unavailable", id="target-failing-transiently"),
        pytest.param("unwritable", id="target-not-synced"),
    ],
)
async def test_refusal_is_kept_while_the_target_is_not_written(interruption: str) -> None:
    fed = await imported_then_unexported(deny_delete_in="c2")
    await fed.reconcile()
    c2 = fed.servers[cid("c2")]
    if interruption == "unavailable":
        c2.unavailable = True
    else:
        fed.world.unwritable.add(cid("c2"))
    await fed.reconcile()
    assert fed.refusals() == [("c2", FORBIDDEN, "delete", kind) for kind in KINDS]
    assert c2.kinds() == KINDS
    c2.unavailable = False
    fed.world.unwritable.clear()
    c2.denied.clear()
    assert await fed.reconcile() == Result()
    assert c2.kinds() == ()


async def test_denied_apply_is_a_condition_and_cleared_by_a_later_apply() -> None:
    fed = Federation()
    fed.servers[cid("c3")].denied.add(("patch", "ServiceEntry"))
    result = await fed.reconcile()
    assert fed.step(result) == Step(ERROR, requeue=True, at_least=DENIED_RETRY_SECONDS)
    assert fed.refusals() == [("c3", FORBIDDEN, "patch", "ServiceEntry")]
    assert fed.servers[cid("c3")].kinds() == ("DestinationRule",)  # the rest is still written
    fed.servers[cid("c3")].denied.clear()
    assert await fed.reconcile() == Result()
    assert fed.refusals() == []
    assert fed.servers[cid("c3")].kinds() == KINDS


async def test_invalid_object_is_refused_without_requeue() -> None:
    fed = Federation()
    fed.servers[cid("c2")].invalid.add("DestinationRule")
    result = await fed.reconcile()
    assert fed.step(result) == Step(ERROR, requeue=False)
    assert result.refused is not None and not result.forbidden
    assert fed.refusals() == [("c2", REFUSED, "patch", "DestinationRule")]


async def test_denied_list_is_a_condition_and_nothing_is_written() -> None:
    fed = Federation()
    c2 = fed.servers[cid("c2")]
    c2.denied.add(("list", "ServiceEntry"))
    result = await fed.reconcile()
    assert fed.step(result) == Step(ERROR, requeue=True, at_least=DENIED_RETRY_SECONDS)
    assert fed.refusals() == [("c2", FORBIDDEN, "list", "ServiceEntry,DestinationRule")]
    assert c2.writes == 0


async def test_denied_retry_never_exceeds_the_resync_period() -> None:
    fed = Federation(dataclasses.replace(make_config(), resync_period_seconds=20.0))
    fed.servers[cid("c2")].denied.add(("patch", "ServiceEntry"))
    assert fed.step(await fed.reconcile()).at_least == 20.0


@pytest.mark.parametrize(
    ("refusal", "expected"),
    [
        pytest.param(
            Refusal(ObjectRef(cid("c2"), "ServiceEntry", "default", "meshfed-reviews"),
                    "delete", 403, "forbidden"),
            ("c2", FORBIDDEN, "delete", "ServiceEntry", "default/meshfed-reviews"),
            id="rbac-denied-delete",
        ),
        pytest.param(
            Refusal(ObjectRef(cid("c3"), "DestinationRule", "default", "meshfed-reviews"),
                    "patch", 422, "invalid"),
            ("c3", REFUSED, "patch", "DestinationRule", "default/meshfed-reviews"),
            id="invalid-apply",
        ),
        pytest.param(
            Refusal(ObjectRef(cid("c2"), "ServiceEntry,DestinationRule", "default", ""),
                    "list", 403, "forbidden"),
            ("c2", FORBIDDEN, "list", "ServiceEntry,DestinationRule", "default"),
            id="rbac-denied-list",
        ),
        pytest.param(
            Refusal(ObjectRef(cid("c2"), "ServiceEntry", "default", "meshfed-reviews"),
                    "patch", None, "refused"),
            ("c2", REFUSED, "patch", "ServiceEntry", "default/meshfed-reviews"),
            id="no-http-status",
        ),
    ],
)  # fmt: skip
def test_refusal_condition(refusal: Refusal, expected: tuple[str, ...]) -> None:
    condition = refusal_condition(REVIEWS, refusal)
    got = (condition.cluster, condition.reason, condition.verb, condition.kind, condition.name)
    assert got == expected
    assert (condition.key, condition.message) == (REVIEWS, refusal.message)

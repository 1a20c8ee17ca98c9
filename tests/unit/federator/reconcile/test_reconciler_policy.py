"""The reconciler with policies: egress keys write, keep and prune a namespace's egress objects
in every target; a user's default Sidecar is reported, never overwritten; access policies go
only where the service is exported; a policy kind the config does not use needs no RBAC.

In-memory apiservers (no sockets), as in ``test_reconciler_denied``, that honour namespaces.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, cast

from federator.core.config import FederationConfig
from federator.core.config_policy import (
    AccessRule,
    AccessSource,
    EgressPort,
    EgressRule,
    EgressSettings,
    ServiceAccess,
)
from federator.core.model import ClusterId, ServiceKey
from federator.core.render_policy import egress_key
from federator.kube.client import KubeClient, ListResult
from federator.kube.resources import Resource
from federator.metrics import FederatorMetrics
from federator.reconcile.outcome import Result
from federator.reconcile.reconciler import Reconciler
from federator.status import REFUSED, RefusalCondition, StatusRegistry
from tests.helpers.federator_builders import REVIEWS, cid, export, make_config, pods, view
from tests.unit.federator.reconcile.test_reconciler_denied import FakeApiserver, FakeWorld

NAMESPACES = frozenset({"istio-system", "shop", "default"})
EGRESS = EgressSettings(
    allow=(
        EgressRule(host="api.example.com", ports=(EgressPort(443),)),
        EgressRule(host="db.example.net", ports=(EgressPort(5432, "TCP"),), namespaces=("shop",)),
    )
)
ROOT_KEY, SHOP_KEY = egress_key("istio-system"), egress_key("shop")


class NamespacedApiserver(FakeApiserver):
    async def list(
        self,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        **kw: Any,
    ) -> ListResult:
        listed = await super().list(resource, label_selector=label_selector, **kw)
        items = [o for o in listed.items if namespace in (None, o["metadata"]["namespace"])]
        return ListResult(items=items, resource_version=listed.resource_version)

    def names(self, kind: str, namespace: str) -> list[str]:
        return sorted(n for k, ns, n in self.objects if (k, ns) == (kind, namespace))


class SelectorWorld(FakeWorld):
    def service_object(self, cluster: ClusterId, key: ServiceKey) -> Mapping[str, Any] | None:
        if key in self.current[cluster].exported:
            return {"metadata": {"name": key.name}, "spec": {"selector": {"app": key.name}}}
        return None


class Federation:
    def __init__(self, config: FederationConfig) -> None:
        self.config = config
        namespaces = NAMESPACES
        self.world = SelectorWorld(
            {
                cid("c1"): dataclasses.replace(
                    view("c1", [export("c1")], {REVIEWS: pods("10.1.0", 1)}),
                    namespaces=namespaces,
                ),
                cid("c2"): dataclasses.replace(view("c2"), namespaces=namespaces),
                cid("c3"): dataclasses.replace(view("c3"), namespaces=frozenset({"default"})),
            }
        )
        self.servers = {c: NamespacedApiserver(c) for c in config.cluster_ids}
        self.status = StatusRegistry(clusters=config.cluster_ids)
        self.reconciler = self.with_config(config)

    def with_config(self, config: FederationConfig) -> Reconciler:
        self.config = config
        self.reconciler = Reconciler(
            config=config,
            world=self.world,
            clients=cast(Mapping[ClusterId, KubeClient], self.servers),
            metrics=FederatorMetrics(),
            status=self.status,
        )
        return self.reconciler


async def test_egress_objects_written_kept_and_pruned() -> None:
    fed = Federation(dataclasses.replace(make_config(), egress=EGRESS))
    assert await fed.reconciler.reconcile(ROOT_KEY) == Result()
    assert await fed.reconciler.reconcile(SHOP_KEY) == Result()
    for c in ("c1", "c2"):
        server = fed.servers[cid(c)]
        assert server.names("Sidecar", "istio-system") == ["meshfed-egress"]
        assert server.names("Sidecar", "shop") == ["meshfed-egress"]
        assert len(server.names("ServiceEntry", "istio-system")) == 1
    assert fed.servers[cid("c3")].names("Sidecar", "shop") == []  # no such namespace there
    writes = sum(s.writes for s in fed.servers.values())
    await fed.reconciler.reconcile(ROOT_KEY)
    assert sum(s.writes for s in fed.servers.values()) == writes  # a resync writes nothing
    assert fed.status.service(ROOT_KEY) is None  # nothing wrong: not listed
    assert not fed.reconciler.imported.anywhere(ROOT_KEY)

    fed.with_config(make_config())  # the egress section removed (a restart with a new config)
    assert await fed.reconciler.reconcile(SHOP_KEY) == Result()
    assert fed.servers[cid("c1")].names("Sidecar", "shop") == []
    assert fed.servers[cid("c1")].names("ServiceEntry", "shop") == []
    assert fed.servers[cid("c1")].names("Sidecar", "istio-system") == ["meshfed-egress"]


async def test_user_default_sidecar_is_reported_not_overwritten() -> None:
    fed = Federation(dataclasses.replace(make_config(), egress=EGRESS))
    user = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Sidecar",
        "metadata": {"name": "default", "namespace": "shop"},
        "spec": {"egress": [{"hosts": ["./*"]}]},
    }
    c1 = fed.servers[cid("c1")]
    await c1.apply(user)
    await fed.reconciler.reconcile(SHOP_KEY)
    assert c1.names("Sidecar", "shop") == ["default"]
    assert c1.objects[("Sidecar", "shop", "default")]["spec"] == user["spec"]
    assert len(c1.names("ServiceEntry", "shop")) == 1
    status = fed.status.service(SHOP_KEY)
    assert status is not None
    (condition,) = status.conditions
    assert isinstance(condition, RefusalCondition)
    assert (condition.cluster, condition.reason, condition.kind, condition.name) == (
        "c1", REFUSED, "Sidecar", "shop/meshfed-egress",
    )  # fmt: skip
    assert fed.servers[cid("c2")].names("Sidecar", "shop") == ["meshfed-egress"]


ACCESS = ServiceAccess(
    service=REVIEWS, rules=(AccessRule(sources=(AccessSource(namespaces=("shop",)),)),)
)


async def test_access_policy_only_in_exporting_clusters_and_pruned_when_removed() -> None:
    fed = Federation(dataclasses.replace(make_config(), access=(ACCESS,)))
    assert await fed.reconciler.reconcile(REVIEWS) == Result()
    c1 = fed.servers[cid("c1")]
    assert c1.names("AuthorizationPolicy", "default") == ["meshfed-access-reviews"]
    policy = c1.objects[("AuthorizationPolicy", "default", "meshfed-access-reviews")]
    assert policy["spec"]["selector"] == {"matchLabels": {"app": "reviews"}}
    assert fed.servers[cid("c2")].names("AuthorizationPolicy", "default") == []
    fed.with_config(make_config())
    assert await fed.reconciler.reconcile(REVIEWS) == Result()
    assert c1.names("AuthorizationPolicy", "default") == []


async def test_policy_kinds_denied_by_rbac_are_not_needed_without_policies() -> None:
    fed = Federation(make_config())
    for server in fed.servers.values():
        server.denied |= {("list", "AuthorizationPolicy"), ("list", "Sidecar")}
    assert await fed.reconciler.reconcile(REVIEWS) == Result()
    assert fed.servers[cid("c2")].names("ServiceEntry", "default") == ["meshfed-reviews"]
    plan = await fed.reconciler.plan_all()  # computed despite the denials, and nothing to do
    assert plan.is_noop and len(plan.clusters) == 3


async def test_policy_kind_denied_while_the_config_uses_it_is_a_refusal() -> None:
    fed = Federation(dataclasses.replace(make_config(), access=(ACCESS,)))
    fed.servers[cid("c1")].denied.add(("list", "AuthorizationPolicy"))
    result = await fed.reconciler.reconcile(REVIEWS)
    assert result.refused is not None and result.forbidden
    assert "authorizationpolicies" in str(result.refused)

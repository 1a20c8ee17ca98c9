"""A target's reads and writes go out together: ``list_owned`` lists the owned kinds in one
round trip and ``execute`` runs a plan's actions at once, yet both report in a fixed order.

The fake client below answers only once the expected number of requests are in flight at
the same moment, so sequential code times out instead of passing (no sockets).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, cast

import pytest

from federator.core.diff import Action, ClusterPlan, Op
from federator.core.model import ClusterId, ObjectRef, ServiceKey
from federator.errors import ApiPermanentError, ApiRetryableError, FederatorError
from federator.kube.client import KubeClient, ListResult
from federator.kube.resources import DESTINATION_RULES, SERVICE_ENTRIES
from federator.reconcile.apply import execute
from federator.reconcile.reconciler import list_owned

C1 = ClusterId("c1")
KEY = ServiceKey("shop", "reviews")


class Together:
    """Requests that each wait until ``expected`` of them are in flight (or time out)."""

    def __init__(self, expected: int, failures: Mapping[str, FederatorError] | None = None):
        self.expected = expected
        self.in_flight = 0
        self.peak = 0
        self.calls: list[str] = []
        self.failures = dict(failures or {})
        self._all_in = asyncio.Event()

    async def _enter(self, what: str) -> None:
        self.calls.append(what)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        if self.in_flight >= self.expected:
            self._all_in.set()
        try:
            await asyncio.wait_for(self._all_in.wait(), timeout=2)
        finally:
            self.in_flight -= 1
        if what in self.failures:
            raise self.failures[what]

    async def list(self, resource: Any, **_: Any) -> ListResult:
        await self._enter(resource.kind)
        item = {"kind": resource.kind, "metadata": {"name": f"meshfed-{KEY.name}"}}
        return ListResult(items=[item], resource_version="7")

    async def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        await self._enter(f"apply {manifest['metadata']['name']}")
        return dict(manifest)

    async def delete(self, resource: Any, namespace: str, name: str, **_: Any) -> bool:
        await self._enter(f"delete {name}")
        return True


def client(fake: Together) -> KubeClient:
    return cast(KubeClient, fake)


async def test_list_owned_lists_every_kind_in_one_round_trip() -> None:
    fake = Together(expected=2)
    items = await list_owned(client(fake), KEY)
    assert fake.peak == 2
    assert [i["kind"] for i in items] == ["ServiceEntry", "DestinationRule"]


@pytest.mark.parametrize(
    ("failing", "raised"),
    [
        pytest.param(("DestinationRule",), ApiPermanentError, id="second-kind-fails"),
        pytest.param(("ServiceEntry", "DestinationRule"), ApiRetryableError, id="first-wins"),
    ],
)
async def test_list_owned_raises_the_first_failure_in_kind_order(
    failing: tuple[str, ...], raised: type[FederatorError]
) -> None:
    errors: dict[str, FederatorError] = {
        "ServiceEntry": ApiRetryableError("list serviceentries: HTTP 503", status=503),
        "DestinationRule": ApiPermanentError("list destinationrules: HTTP 403", status=403),
    }
    fake = Together(expected=2, failures={k: errors[k] for k in failing})
    with pytest.raises(raised):
        await list_owned(client(fake), KEY, (SERVICE_ENTRIES, DESTINATION_RULES))


def action(op: Op, kind: str, name: str) -> Action:
    ref = ObjectRef(C1, kind, KEY.namespace, name)
    manifest = {"kind": kind, "metadata": {"name": name, "namespace": KEY.namespace}}
    actual = {**manifest, "metadata": {**manifest["metadata"], "uid": "u", "resourceVersion": "3"}}
    return Action(
        ref=ref,
        op=op,
        reason="test",
        desired=manifest if op in (Op.CREATE, Op.UPDATE) else None,
        actual=None if op is Op.CREATE else actual,
    )


async def test_execute_runs_a_plans_actions_at_once_and_reports_in_plan_order() -> None:
    plan = ClusterPlan(
        cluster=C1,
        actions=(
            action(Op.CREATE, "DestinationRule", "meshfed-a"),
            action(Op.KEEP, "ServiceEntry", "meshfed-kept"),
            action(Op.DELETE, "ServiceEntry", "meshfed-old"),
            action(Op.UPDATE, "ServiceEntry", "meshfed-a"),
            action(Op.UPDATE, "DestinationRule", "meshfed-b"),
        ),
    )
    fake = Together(
        expected=4,
        failures={
            "delete meshfed-old": ApiRetryableError("HTTP 409: changed", status=409, retry_after=2),
            "apply meshfed-b": ApiPermanentError("HTTP 422: invalid", status=422),
        },
    )
    out = await execute(plan, client=client(fake))
    assert fake.peak == 4  # the KEEP sends nothing
    assert [(ref.name, op) for ref, op in out.written] == [
        ("meshfed-a", Op.CREATE),
        ("meshfed-a", Op.UPDATE),
    ]
    assert [(ref.name, op) for ref, op in out.failed] == [
        ("meshfed-old", Op.DELETE),
        ("meshfed-b", Op.UPDATE),
    ]
    assert [(r.ref.name, r.verb, r.status) for r in out.refused] == [("meshfed-b", "patch", 422)]
    assert out.retryable is not None and out.retry_after == 2
    assert isinstance(out.permanent, ApiPermanentError)

"""``LeaderElector`` over an in-memory Lease store with resourceVersion preconditions and a
manual clock: one leader, takeover after the lease duration, the fence after a pause, release."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from federator.core.config import LeaderElectionSettings
from federator.errors import ApiRetryableError, NotLeaderError
from federator.kube.fence import go_duration
from federator.kube.leader import LeaderElector
from federator.metrics import FederatorMetrics

SETTINGS = LeaderElectionSettings(enabled=True)


class Leases:
    """Lease objects by name, with the apiserver's optimistic concurrency."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.version = 0

    async def get(self, resource: Any, namespace: str, name: str) -> dict[str, Any] | None:
        found = self.objects.get(name)
        return copy.deepcopy(found) if found else None

    async def write_json(
        self, method: str, resource: Any, namespace: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        name = body["metadata"]["name"]
        current = self.objects.get(name)
        if method == "POST" and current is not None:
            raise ApiRetryableError("exists", status=409)
        if method == "PUT" and (
            current is None
            or body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]
        ):
            raise ApiRetryableError("conflict", status=409)
        self.version += 1
        stored = copy.deepcopy(body)
        stored["metadata"]["resourceVersion"] = str(self.version)
        self.objects[name] = stored
        return copy.deepcopy(stored)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def elector(name: str, leases: Leases, clock: Clock) -> LeaderElector:
    return LeaderElector(
        client=lambda: leases,  # type: ignore[arg-type, return-value]
        namespace="meshfed-system",
        identity=name,
        settings=SETTINGS,
        metrics=FederatorMetrics(),
        clock=clock,
    )


async def test_one_leader_and_takeover_after_the_lease_duration() -> None:
    leases, clock = Leases(), Clock()
    a, b = elector("a", leases, clock), elector("b", leases, clock)
    assert await a.attempt()
    assert not await b.attempt()
    assert a.leading and not b.leading
    assert b.leadership().holder == "a"
    clock.now += 14.9  # a stops renewing (killed): b waits a whole lease duration
    assert not await b.attempt()
    clock.now += 0.2
    assert await b.attempt()
    assert leases.objects["meshfed-federator"]["spec"]["leaseTransitions"] == 1


async def test_a_paused_leader_is_fenced_before_its_elector_runs_again() -> None:
    leases, clock = Leases(), Clock()
    a, b = elector("a", leases, clock), elector("b", leases, clock)
    assert await a.attempt()
    a.check("apply")  # may write
    assert not await b.attempt()
    clock.now += 20.0  # a is stopped (SIGSTOP) past its lease; b takes over
    assert await b.attempt()
    with pytest.raises(NotLeaderError):
        a.check("apply ServiceEntry default/meshfed-x in c2")
    assert not await a.attempt()  # resumed: the Lease is b's, a stays a standby
    assert not a.leading and b.leading


async def test_a_leader_that_cannot_renew_stops_writing_at_the_renew_deadline() -> None:
    leases, clock = Leases(), Clock()
    a = elector("a", leases, clock)
    assert await a.attempt()
    clock.now += SETTINGS.renew_deadline_seconds - 0.1
    a.check("apply")
    clock.now += 0.1
    with pytest.raises(NotLeaderError):
        a.check("apply")


async def test_a_lost_race_for_the_lease_writes_nothing() -> None:
    leases, clock = Leases(), Clock()
    a, b = elector("a", leases, clock), elector("b", leases, clock)
    await leases.write_json(
        "POST",
        None,
        "meshfed-system",
        {"metadata": {"name": "meshfed-federator"}, "spec": {"holderIdentity": ""}},
    )
    assert await a.attempt()
    with pytest.raises(ApiRetryableError):  # b read the released Lease before a took it
        stale = await leases.get(None, "meshfed-system", "meshfed-federator")
        assert stale is not None
        stale["metadata"]["resourceVersion"] = "1"
        await leases.write_json("PUT", None, "meshfed-system", stale)
    assert not await b.attempt()


async def test_shutdown_releases_the_lease_for_an_immediate_takeover() -> None:
    leases, clock = Leases(), Clock()
    a, b = elector("a", leases, clock), elector("b", leases, clock)
    assert await a.attempt()
    assert not await b.attempt()
    await a.shutdown()
    assert not a.leading
    assert await b.attempt()


async def test_a_write_allowed_last_is_past_its_server_deadline_before_a_takeover() -> None:
    """The apiserver drops a write ``server_deadline_seconds`` after its head arrived; for the
    last write a tenure allows, that is no later than the earliest takeover."""
    leases, clock = Leases(), Clock()
    a, b = elector("a", leases, clock), elector("b", leases, clock)
    assert await a.attempt()
    assert not await b.attempt()  # b sees the record now: its lease duration starts here
    clock.now += SETTINGS.renew_deadline_seconds - 0.001
    a.check("apply")  # the last write a may send; its head arrives now at the earliest
    clock.now += a.server_deadline_seconds  # the apiserver's deadline for it has passed
    assert not await b.attempt()
    assert a.server_deadline_seconds == 2.5  # half the margin: the rest is slack
    clock.now += 2.5 + 0.002
    assert await b.attempt()


@pytest.mark.parametrize(
    ("seconds", "duration"),
    [
        pytest.param(2.5, "2500ms", id="default-half-margin"),
        pytest.param(0.0004, "1ms", id="never-zero-which-means-no-timeout"),
        pytest.param(12.3456, "12346ms", id="rounded-to-milliseconds"),
    ],
)
def test_server_deadline_as_go_duration(seconds: float, duration: str) -> None:
    assert go_duration(seconds) == duration

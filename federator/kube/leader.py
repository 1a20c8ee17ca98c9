"""``LeaderElector``: one writer among federator replicas, and the fence on its writes (R5).

Every ``retryPeriod`` the elector reads the Lease in the home cluster and, if it may
(``federator.core.election.claim``: its own Lease, a released one, or one unchanged for
``leaseDuration`` by this replica's clock), writes it back with the read's resourceVersion as
precondition: of two candidates only one wins, and a leader that was paused cannot renew over
a successor (409).

The elector is also the ``WriteFence`` of every member client: a write request is sent only
while this replica's ``Tenure`` is valid - ``renewDeadline`` (10 s) from the moment its last
successful renewal was sent, measured on the monotonic clock, which keeps running while the
process is stopped. A standby takes over only after ``leaseDuration`` (15 s) without a
renewal, so the old leader's right to write ends at least ``leaseDuration - renewDeadline``
before anyone else's begins, and a leader paused past its Lease refuses every write after
it resumes, before its elector has even run again: the check is the last step before a
request is sent (``federator.kube.client``). What it cannot stop are requests already sent
when the pause began; they were sent while the Lease was held.

On winning, ``on_started_leading`` runs (the app enqueues every key); on shutdown a leader
releases the Lease so a standby takes over at once instead of after ``leaseDuration``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from federator.core.config import LeaderElectionSettings
from federator.core.election import (
    Leadership,
    LeaseRecord,
    Observation,
    Tenure,
    claim,
    lease_spec,
    observe,
    record_of,
)
from federator.errors import FederatorError, NotLeaderError
from federator.kube.client import KubeClient
from federator.kube.resources import LEASES
from federator.lifecycle import cancel_and_wait
from federator.metrics import FederatorMetrics

log = logging.getLogger(__name__)

RELEASE_TIMEOUT_SECONDS = 5.0


class LeaderElector:
    """See the module docstring. ``start()`` returns at once; ``shutdown()`` is idempotent."""

    def __init__(
        self,
        *,
        client: Callable[[], KubeClient | None],
        namespace: str,
        identity: str,
        settings: LeaderElectionSettings,
        metrics: FederatorMetrics,
        on_started_leading: Callable[[], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``client``: the home cluster's client, read at each attempt (it may be rotated)."""
        self._client = client
        self._namespace = namespace
        self.identity = identity
        self.settings = settings
        self._metrics = metrics
        self._on_started = on_started_leading
        self._clock = clock
        self._tenure: Tenure | None = None
        self._observation: Observation | None = None
        self._seen: LeaseRecord | None = None
        self._task: asyncio.Task[None] | None = None
        self._callbacks: set[asyncio.Task[None]] = set()
        self._stopped = False
        metrics.leader.set(0)

    # ---- the fence
    @property
    def leading(self) -> bool:
        """This replica may write now."""
        tenure = self._tenure
        return tenure is not None and tenure.valid(self._clock())

    def check(self, what: str) -> None:
        """``WriteFence``: raise ``NotLeaderError`` unless this replica may write now."""
        if not self.leading:
            self._metrics.writes_fenced.inc()
            raise NotLeaderError(f"{what}: not sent: {self.identity} does not hold the Lease")

    @property
    def server_deadline_seconds(self) -> float:
        """``WriteFence``: the apiserver drops a write this long after its head arrived."""
        return self.settings.write_deadline_seconds

    def leadership(self) -> Leadership:
        seen = self._seen
        return Leadership(
            enabled=True,
            leader=self.leading,
            identity=self.identity,
            holder=seen.holder if seen else "",
            transitions=seen.transitions if seen else 0,
            renew_time=seen.renew_time if seen else None,
        )

    # ---- lifecycle
    async def start(self) -> None:
        if self._task is not None or self._stopped:
            return
        self._task = asyncio.create_task(self._run(), name="leader-election")

    async def shutdown(self) -> None:
        """Stop campaigning; a leader stops writing at once and releases the Lease."""
        if self._stopped:
            return
        self._stopped = True
        was_leader = self._tenure is not None
        self._tenure = None
        self._metrics.leader.set(0)
        task, self._task = self._task, None
        await cancel_and_wait([*([task] if task else []), *self._callbacks])
        if was_leader:
            with contextlib.suppress(FederatorError, TimeoutError):
                await asyncio.wait_for(self._release(), RELEASE_TIMEOUT_SECONDS)

    async def _run(self) -> None:
        period = self.settings.retry_period_seconds
        while True:
            try:
                await self.attempt()
            except FederatorError as exc:
                log.warning("leader election: %s", exc)
            self._expire()
            await asyncio.sleep(self._next_delay(period))

    def _next_delay(self, period: float) -> float:
        """The leader renews every ``period``; standbys jitter (as client-go does, so they do
        not all try at once) but also try the moment the observed Lease expires, which keeps a
        takeover within ``leaseDuration`` + one read after the leader's last renewal."""
        if self._tenure is not None:
            return period
        delay = period * random.uniform(1.0, 1.2)
        seen = self._observation
        if seen is not None and seen.record.holder not in ("", self.identity):
            duration = seen.record.lease_duration_seconds or self.settings.lease_duration_seconds
            until = seen.observed_at + duration - self._clock()
            if until > 0:
                delay = min(delay, until + 0.05)
        return delay

    # ---- one round
    async def attempt(self) -> bool:
        """Read the Lease and take or renew it if allowed; True if this replica leads now.

        Raises ``FederatorError`` when the home apiserver cannot be read or written."""
        client = self._client()
        if client is None:
            raise NotLeaderError("no home cluster client to hold the Lease with")
        name, now = self.settings.lease_name, self._clock()
        lease = await client.get(LEASES, self._namespace, name)
        current = None if lease is None else record_of(lease)
        if current is not None:
            self._seen = current
            self._observation = observe(self._observation, current, now)
        wanted = claim(
            identity=self.identity,
            current=current,
            observation=self._observation,
            now=now,
            wall=datetime.now(UTC),
            lease_duration_seconds=round(self.settings.lease_duration_seconds),
        )
        if wanted is None:
            self._step_down(f"the Lease is held by {current.holder if current else '?'}")
            return False
        metadata = {"name": name, "namespace": self._namespace}
        if lease is not None:
            metadata["resourceVersion"] = str(lease["metadata"]["resourceVersion"])
        body = {
            "apiVersion": LEASES.api_version,
            "kind": LEASES.kind,
            "metadata": metadata,
            "spec": lease_spec(wanted),
        }
        sent = self._clock()
        written = await client.write_json(
            "POST" if lease is None else "PUT", LEASES, self._namespace, body
        )
        self._seen = record_of(written)
        self._observation = Observation(self._seen, self._clock())
        was_leader = self._tenure is not None
        self._tenure = Tenure(renewed_at=sent, renew_deadline=self.settings.renew_deadline_seconds)
        if not was_leader:
            self._started_leading(wanted)
        return True

    def _expire(self) -> None:
        if self._tenure is not None and not self._tenure.valid(self._clock()):
            self._step_down("the Lease was not renewed within renewDeadline")

    def _step_down(self, why: str) -> None:
        if self._tenure is None:
            return
        self._tenure = None
        self._metrics.leader.set(0)
        log.warning("%s stopped leading: %s", self.identity, why)

    def _started_leading(self, record: LeaseRecord) -> None:
        self._metrics.leader.set(1)
        self._metrics.leader_transitions.inc()
        log.info("%s is the leader (lease transitions: %d)", self.identity, record.transitions)
        if self._on_started is not None:
            task = asyncio.create_task(self._run_started(self._on_started), name="started-leading")
            self._callbacks.add(task)
            task.add_done_callback(self._callbacks.discard)

    @staticmethod
    async def _run_started(callback: Callable[[], Awaitable[None]]) -> None:
        try:
            await callback()
        except Exception:  # a bug must not end the election; the resync repairs the rest
            log.exception("the started-leading callback failed")

    async def _release(self) -> None:
        client = self._client()
        if client is None:
            return
        lease = await client.get(LEASES, self._namespace, self.settings.lease_name)
        if lease is None or record_of(lease).holder != self.identity:
            return
        now = datetime.now(UTC)
        released = LeaseRecord("", 1, now, now, record_of(lease).transitions)
        lease["spec"] = lease_spec(released)
        await client.write_json("PUT", LEASES, self._namespace, lease)
        log.info("%s released the Lease", self.identity)

"""Leader election's decisions, pure: a Lease record, who may take it, and the next record.

The algorithm is client-go's ``leaderelection`` (Lease lock): a standby never trusts the
``renewTime`` written by another host's clock; it remembers when *it* last saw the record
change (``observed_at``, its own monotonic clock) and takes the Lease only when the record
has stayed unchanged for ``leaseDuration`` since. The write that takes or renews the Lease is
an update carrying the read's resourceVersion, so of two candidates only one succeeds.

What client-go leaves out is the fence: its leader keeps acting after it lost the Lease until
it notices. Here the leader's right to write is ``Tenure``: it lasts ``renewDeadline`` from the
moment the last successful renewal was *sent* (measured on the leader's monotonic clock, which
keeps running while the process is paused), and ``renewDeadline < leaseDuration`` leaves a
margin before any standby may take over. The kube layer checks it before every write request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

MICRO_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"
"""``metav1.MicroTime`` as the apiserver writes it."""


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """The ``spec`` of a ``coordination.k8s.io/v1`` Lease."""

    holder: str = ""
    """``holderIdentity``; empty: released."""
    lease_duration_seconds: int = 15
    acquire_time: datetime | None = None
    renew_time: datetime | None = None
    transitions: int = 0
    """``leaseTransitions``: how often the holder changed (a fencing epoch for reports)."""


@dataclass(frozen=True, slots=True)
class Observation:
    """A record as a candidate last saw it change, and when (its monotonic clock)."""

    record: LeaseRecord
    observed_at: float


def _time(raw: Any) -> datetime | None:
    if not isinstance(raw, str) or not raw:
        return None
    for fmt in (MICRO_TIME, "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.strptime(raw, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def record_of(lease: Mapping[str, Any]) -> LeaseRecord:
    """The record of a Lease object as read from the apiserver."""
    spec = lease.get("spec") or {}
    return LeaseRecord(
        holder=str(spec.get("holderIdentity") or ""),
        lease_duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
        acquire_time=_time(spec.get("acquireTime")),
        renew_time=_time(spec.get("renewTime")),
        transitions=int(spec.get("leaseTransitions") or 0),
    )


def _format(when: datetime | None) -> str | None:
    return None if when is None else when.astimezone(UTC).strftime(MICRO_TIME)


def lease_spec(record: LeaseRecord) -> dict[str, Any]:
    """The Lease ``spec`` that writes ``record``."""
    return {
        "holderIdentity": record.holder or None,
        "leaseDurationSeconds": record.lease_duration_seconds,
        "acquireTime": _format(record.acquire_time),
        "renewTime": _format(record.renew_time),
        "leaseTransitions": record.transitions,
    }


def observe(previous: Observation | None, record: LeaseRecord, now: float) -> Observation:
    """The observation after reading ``record`` at ``now``: the clock restarts only when the
    record changed (a renewal changes ``renewTime``)."""
    if previous is not None and previous.record == record:
        return previous
    return Observation(record=record, observed_at=now)


def claim(
    *,
    identity: str,
    current: LeaseRecord | None,
    observation: Observation | None,
    now: float,
    wall: datetime,
    lease_duration_seconds: int,
) -> LeaseRecord | None:
    """The record to write to take or keep the Lease, or None if another holder's Lease is
    still valid (as ``observation`` measured it). ``current`` None: no Lease exists yet."""
    if current is None:
        return LeaseRecord(identity, lease_duration_seconds, wall, wall, 0)
    held_by_other = current.holder not in ("", identity)
    if held_by_other:
        duration = current.lease_duration_seconds or lease_duration_seconds
        if observation is None or now < observation.observed_at + duration:
            return None
    if current.holder == identity:
        return replace(current, renew_time=wall, lease_duration_seconds=lease_duration_seconds)
    return LeaseRecord(identity, lease_duration_seconds, wall, wall, current.transitions + 1)


@dataclass(frozen=True, slots=True)
class Tenure:
    """A leader's right to write: from its last renewal sent at ``renewed_at`` (monotonic)
    for ``renew_deadline`` seconds."""

    renewed_at: float
    renew_deadline: float

    def valid(self, now: float) -> bool:
        return now < self.renewed_at + self.renew_deadline

    def remaining(self, now: float) -> float:
        return max(0.0, self.renewed_at + self.renew_deadline - now)


@dataclass(frozen=True, slots=True)
class Leadership:
    """What a replica knows about the election, for status, /readyz and the status API."""

    enabled: bool = False
    """Leader election is on; off: this process writes unconditionally."""
    leader: bool = True
    """This replica may write now (always True when election is off)."""
    identity: str = ""
    """This replica's identity in the Lease."""
    holder: str = ""
    """The Lease holder last seen (this replica's identity when it leads)."""
    transitions: int = 0
    """``leaseTransitions`` last seen."""
    renew_time: datetime | None = None
    """The Lease's ``renewTime`` last seen (the holder's clock)."""

    @property
    def role(self) -> str:
        """``leader``, ``standby`` or ``single`` (no election)."""
        if not self.enabled:
            return "single"
        return "leader" if self.leader else "standby"

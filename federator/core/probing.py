"""The east-west gateway prober's state machine, pure: probe results -> up, down or unknown.

A gateway starts ``UP`` (nothing is withdrawn on start-up before it was ever probed), turns
``DOWN`` after ``failure_threshold`` failed probes in a row and ``UP`` again after one
success - Linkerd's gateway probe rules. ``UNKNOWN`` is a gateway that cannot be probed (no
address known, or probing off): it is treated as up, since meshfed knows nothing against it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime


class GatewayState(enum.StrEnum):
    UNKNOWN = "unknown"
    UP = "up"
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class GatewayHealth:
    """One cluster's east-west gateway as the prober last saw it."""

    state: GatewayState = GatewayState.UNKNOWN
    address: str = ""
    """``host:port`` probed; empty when unknown."""
    failures: int = 0
    """Probes failed in a row."""
    error: str = ""
    """The last probe's error; empty after a success."""
    since: datetime | None = None
    """When ``state`` last changed."""

    @property
    def usable(self) -> bool:
        """Its endpoints may be offered to other clusters (not known to be down)."""
        return self.state is not GatewayState.DOWN


def after_probe(
    health: GatewayHealth,
    *,
    address: str,
    error: str | None,
    threshold: int,
    now: datetime,
) -> GatewayHealth:
    """The health after one probe of ``address`` (``error`` None: it answered)."""
    if error is None:
        state, failures = GatewayState.UP, 0
    else:
        failures = health.failures + 1
        down = failures >= threshold or health.state is GatewayState.DOWN
        state = GatewayState.DOWN if down else GatewayState.UP
    since = health.since if state is health.state and health.since else now
    return replace(
        health, state=state, address=address, failures=failures, error=error or "", since=since
    )


def unprobed(health: GatewayHealth, *, now: datetime) -> GatewayHealth:
    """No address to probe: unknown (treated as up)."""
    if health.state is GatewayState.UNKNOWN:
        return health
    return GatewayHealth(state=GatewayState.UNKNOWN, since=now)

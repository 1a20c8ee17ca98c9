"""The federator's in-memory read model: what it knows, for the status API and the CLI.

Only the federator's event loop writes (the status reporter, ``federator.reactor.reporter``:
clusters, readiness, the planner; the reconciler: services and the change feed); readers (the
gRPC status API, ``/readyz``, ``meshfed clusters``) only read snapshots. Every value handed out
is a frozen dataclass, so a reader can never observe a half-updated record. The registry is
safe to use from several threads and event loops: state sits behind one lock, and each
change-feed subscriber owns a bounded ``asyncio.Queue`` bound to the loop it subscribed from (a
publish from another thread is handed over with ``call_soon_threadsafe``). A subscriber that
does not keep up loses events instead of slowing the federator; its ``drops`` counter says how
many.

Public API (stable; the gRPC layer codes against it):

- reads: ``clusters()``, ``cluster(name)``, ``services()``, ``service(key)``, ``ready``,
  ``leadership``,
  ``subscribe(max_queue=...)`` -> ``Subscription`` (async iterator of ``ChangeEvent``),
  ``await plan()`` -> ``federator.core.diff.Plan`` (computed on demand, writes nothing).
- writes (the federator's event loop only): ``set_cluster``, ``set_service``,
  ``remove_service``, ``publish``, ``set_planner``, ``set_ready``, ``set_leadership``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType

from federator.core.diff import Plan
from federator.core.election import Leadership
from federator.core.model import ClusterId, Condition, ConflictReport, Endpoint, ServiceKey
from federator.core.probing import GatewayHealth

Planner = Callable[[], Awaitable[Plan]]
"""Computes the plan of the whole federation against live state; performs no writes."""


@dataclass(frozen=True, slots=True)
class ClusterStatus:
    """One member cluster as the federator currently sees it."""

    name: ClusterId
    reachable: bool = False
    """Every watch of the cluster is connected right now."""
    synced: bool = False
    """Every watch completed its initial list at least once since start-up."""
    stale: bool = True
    """The cluster's data is not current (never synced, or a watch is down): nothing is pruned
    on its behalf and its last-known exports are kept in the other clusters (fail-static)."""
    last_sync_time: datetime | None = None
    """When all watches were last seen connected and synced (UTC)."""
    exported_count: int = 0
    """Services this cluster exports."""
    imported_count: int = 0
    """Global services written into this cluster (ServiceEntries owned by meshfed)."""
    error: str | None = None
    """The last connection/watch error, if the cluster is not reachable."""
    staleness_seconds: float | None = None
    """Seconds since the data was last known current: 0 while synced and reachable; None if
    it never was. Its exports are "unknown (stale)" while this grows, not "none"."""
    gateway: GatewayHealth = field(default_factory=GatewayHealth)
    """Its east-west gateway as the prober last saw it (R4)."""


FORBIDDEN = "Forbidden"
"""``RefusalCondition.reason``: the target's RBAC denies the verb (HTTP 403)."""
REFUSED = "Refused"
"""``RefusalCondition.reason``: the target refused the request for good otherwise (400, 422)."""


@dataclass(frozen=True, slots=True)
class RefusalCondition:
    """A request to a target cluster that its apiserver refused for good, for one service.

    Read like a ``federator.core.model.Condition`` (``key``, ``cluster`` - the target -, ``reason``,
    ``message``: the status API maps the reason, which ``federator.core.model.Reason`` does not
    know, to ``CONDITION_REASON_OTHER`` and keeps its text), plus what was refused. It lasts
    until a reconcile of the service reaches that target again without a refusal."""

    key: ServiceKey
    cluster: ClusterId
    reason: str
    """``FORBIDDEN`` or ``REFUSED``."""
    verb: str
    """The RBAC verb refused: ``patch`` (server-side apply), ``delete`` or ``list``."""
    kind: str
    """ServiceEntry or DestinationRule."""
    name: str
    """``namespace/name`` of the object (just ``namespace`` for a refused list)."""
    message: str
    """The request and the apiserver's answer."""


ServiceCondition = Condition | RefusalCondition
"""What ``ServiceStatus.conditions`` holds."""


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    """One global service."""

    key: ServiceKey
    exporting_clusters: tuple[ClusterId, ...] = ()
    """Clusters exporting it, sorted."""
    endpoints: Mapping[ClusterId, tuple[Endpoint, ...]] = field(default_factory=dict)
    """All endpoints (ready or not) per exporting cluster (the federator hands over a
    ``PackedEndpoints``)."""
    conflicts: tuple[ConflictReport, ...] = ()
    conditions: tuple[ServiceCondition, ...] = ()
    """Everything else to report (NamespaceMissing per target cluster, gateway problems, a
    request a target refused: ``RefusalCondition``)."""
    last_applied: Mapping[ClusterId, datetime] = field(default_factory=dict)
    """Per target cluster: when meshfed last wrote (created/updated/deleted) its objects (the
    federator hands over a ``TargetTimes``)."""
    last_propagation: Mapping[ClusterId, float] = field(default_factory=dict)
    """Per target cluster: seconds from a watch observing the change behind the latest write
    there to that write landing (the propagation-latency histogram's last sample for it; the
    federator hands over a ``TargetSeconds``)."""


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    """One write the federator made into a target cluster."""

    sequence: int
    """Monotonic per registry, starting at 1; gaps tell a subscriber it dropped events."""
    time: datetime
    cluster: ClusterId
    """The target cluster written to."""
    key: ServiceKey
    kind: str
    """ServiceEntry or DestinationRule."""
    name: str
    op: str
    """``create``, ``update`` or ``delete`` (``federator.core.diff.Op`` values)."""


class Subscription:
    """A bounded feed of ``ChangeEvent``; use as ``async with`` and ``async for``."""

    def __init__(self, *, registry: StatusRegistry, max_queue: int) -> None:
        self._registry = registry
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[ChangeEvent] = asyncio.Queue(maxsize=max_queue)
        self.drops = 0
        """Events lost because this subscriber's queue was full."""

    def _offer(self, event: ChangeEvent) -> None:
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.drops += 1

    def deliver(self, event: ChangeEvent) -> None:
        """Hand an event over from any thread (called by the registry)."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._offer(event)
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._offer, event)

    async def get(self) -> ChangeEvent:
        """The next event (waits)."""
        return await self._queue.get()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> ChangeEvent:
        return await self._queue.get()

    def close(self) -> None:
        """Stop receiving events (idempotent)."""
        self._registry._unsubscribe(self)

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class StatusRegistry:
    """Thread-safe snapshot store written by the federator, read by the status API and the CLI."""

    def __init__(self, *, clusters: tuple[ClusterId, ...] = (), max_subscribers: int = 64) -> None:
        self._lock = threading.Lock()
        self._clusters: dict[ClusterId, ClusterStatus] = {
            c: ClusterStatus(name=c) for c in clusters
        }
        self._services: dict[ServiceKey, ServiceStatus] = {}
        self._subscribers: list[Subscription] = []
        self._max_subscribers = max_subscribers
        self._sequence = 0
        self._planner: Planner | None = None
        self._planner_loop: asyncio.AbstractEventLoop | None = None
        self._ready = False
        self._leadership = Leadership()

    # ---- reads
    def clusters(self) -> tuple[ClusterStatus, ...]:
        """All member clusters, sorted by name."""
        with self._lock:
            return tuple(self._clusters[c] for c in sorted(self._clusters))

    def cluster(self, name: str) -> ClusterStatus | None:
        with self._lock:
            return self._clusters.get(ClusterId(name))

    def services(self) -> tuple[ServiceStatus, ...]:
        """All global services, sorted by key."""
        with self._lock:
            return tuple(self._services[k] for k in sorted(self._services))

    def service(self, key: ServiceKey) -> ServiceStatus | None:
        with self._lock:
            return self._services.get(key)

    @property
    def ready(self) -> bool:
        """Every reachable cluster synced (or the start-up grace period ran out)."""
        return self._ready

    @property
    def leadership(self) -> Leadership:
        """This replica's role in the leader election (``single`` when it is off)."""
        return self._leadership

    def subscribe(self, *, max_queue: int = 256) -> Subscription:
        """A new change feed bound to the running event loop.

        Raises ``RuntimeError`` when ``max_subscribers`` feeds are already open (bounded)."""
        sub = Subscription(registry=self, max_queue=max_queue)
        with self._lock:
            if len(self._subscribers) >= self._max_subscribers:
                raise RuntimeError(f"too many status subscribers (max {self._max_subscribers})")
            self._subscribers.append(sub)
        return sub

    async def plan(self) -> Plan:
        """What the federator would change right now (a dry run; nothing is written).

        Raises ``RuntimeError`` if no planner is registered yet (the federator is starting)."""
        with self._lock:
            planner, loop = self._planner, self._planner_loop
        if planner is None or loop is None:
            raise RuntimeError("the federator is not running: no plan available")
        if asyncio.get_running_loop() is loop:
            return await planner()
        future = asyncio.run_coroutine_threadsafe(_await(planner), loop)
        return await asyncio.wrap_future(future)

    # ---- writes (the federator's event loop)
    def set_cluster(self, status: ClusterStatus) -> None:
        with self._lock:
            self._clusters[status.name] = status

    def set_service(self, status: ServiceStatus) -> None:
        with self._lock:
            self._services[status.key] = status

    def remove_service(self, key: ServiceKey) -> None:
        with self._lock:
            self._services.pop(key, None)

    def set_ready(self, ready: bool) -> None:
        self._ready = ready

    def set_leadership(self, leadership: Leadership) -> None:
        self._leadership = leadership

    def set_planner(self, planner: Planner) -> None:
        """Register the plan callable; it runs on the caller's (the federator's) event loop."""
        with self._lock:
            self._planner = planner
            self._planner_loop = asyncio.get_running_loop()

    def next_sequence(self) -> int:
        with self._lock:
            self._sequence += 1
            return self._sequence

    def publish(self, event: ChangeEvent) -> None:
        """Send ``event`` to every subscriber; full queues drop (counted per subscriber)."""
        with self._lock:
            subscribers = list(self._subscribers)
        for sub in subscribers:
            sub.deliver(event)

    def _unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subscribers:
                self._subscribers.remove(sub)


async def _await(planner: Planner) -> Plan:
    return await planner()

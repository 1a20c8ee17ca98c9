"""The gRPC status API of ``meshfed federate``: FederationService, health and reflection.

A read-only window onto ``federator.status.StatusRegistry``: the servicer validates requests,
reads snapshots, converts them (``federator.api.convert``) and maps failures to gRPC codes -
a bad request is INVALID_ARGUMENT, an unknown service key NOT_FOUND, a plan that cannot read
a cluster (``RetryableError``, timeout, federator not running yet) UNAVAILABLE, a refused one
(``PermanentError``) FAILED_PRECONDITION. It never writes to a cluster.

Everything is bounded: concurrent RPCs, request size, the number of WatchEvents streams
(RESOURCE_EXHAUSTED beyond), each stream's queue (a slow reader loses events instead of
slowing anyone else; ``Event.dropped_before`` is the gap in sequence numbers it saw) and the
time a Plan may take.
The health service says SERVING only while the registry is ready; the registry has no change
callback, so readiness is polled (cheap: one attribute read per interval).
The drill RPCs (ListDrills, WatchDrills) are a mixin, ``federator.api.drill_rpcs``, reading
the Drill objects of the home cluster through ``federator.api.drill_source``.
Who may call is ``federator.api.auth``'s: TLS or mutual TLS on the port, and a bearer token on
every RPC but health (``ApiSecuritySettings``, the ``api:`` section of the config).
The transport is ``federator.api.grpc_host`` (grpclib; it says why not grpcio); health and
reflection are ``federator.api.grpc_std``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2
from grpclib.const import Status
from grpclib.server import Server

from federator.api import convert, grpc_std
from federator.api._generated.meshfed.v1 import federation_pb2 as pb
from federator.api.auth import TokenFile, TokenGate, server_ssl_context
from federator.api.drill_rpcs import DrillRpcs
from federator.api.drill_source import DrillSource
from federator.api.grpc_host import Call, Host, Limits, abort
from federator.core.config_security import ApiSecuritySettings
from federator.core.model import ClusterId
from federator.errors import InvalidRequestError, PermanentError, RetryableError
from federator.lifecycle import cancel_and_wait
from federator.status import ChangeEvent, StatusRegistry

log = logging.getLogger(__name__)

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["FederationService"].full_name
"""``meshfed.v1.FederationService``: its health status equals the overall one."""

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """Limits of the status API server (defaults suit a single federator)."""

    max_concurrent_rpcs: int = 64
    """RPCs served at once (streams included); more are refused with RESOURCE_EXHAUSTED."""
    max_streams: int = 16
    """Open WatchEvents streams; one more is refused with RESOURCE_EXHAUSTED."""
    stream_queue: int = 256
    """Events buffered per WatchEvents stream before that stream starts losing events."""
    max_request_bytes: int = 64 * 1024
    """Largest request accepted (requests are tiny; this bounds a hostile client)."""
    plan_timeout_seconds: float = 30.0
    """Longest a Plan may take (a client deadline may shorten it); then UNAVAILABLE."""
    health_poll_seconds: float = 0.5
    """How often the health status follows ``StatusRegistry.ready``."""
    shutdown_grace_seconds: float = 2.0
    """How long shutdown lets unary RPCs finish; streams end at once."""


class FederationServicer(DrillRpcs):
    """``meshfed.v1.FederationService`` over a status registry (duck-typed servicer)."""

    _settings: ApiSettings

    def __init__(
        self,
        *,
        status: StatusRegistry,
        host_suffix: str,
        settings: ApiSettings,
        stopping: asyncio.Event,
        now: Callable[[], datetime],
        drills: DrillSource | None = None,
    ) -> None:
        self._status = status
        self._drills = drills
        self._host_suffix = host_suffix
        self._settings = settings
        self._stopping = stopping
        self._now = now
        self.open_streams = 0
        """WatchEvents streams open now (each with its registry subscription)."""

    async def GetStatus(  # noqa: N802
        self, request: pb.GetStatusRequest, context: Call
    ) -> pb.GetStatusResponse:
        return convert.status_to_pb(
            ready=self._status.ready,
            clusters=self._status.clusters(),
            services=self._status.services(),
            now=self._now(),
            leadership=self._status.leadership,
        )

    async def ListClusters(  # noqa: N802
        self, request: pb.ListClustersRequest, context: Call
    ) -> pb.ListClustersResponse:
        return pb.ListClustersResponse(
            clusters=[convert.cluster_to_pb(c) for c in self._status.clusters()]
        )

    async def ListServices(  # noqa: N802
        self, request: pb.ListServicesRequest, context: Call
    ) -> pb.ListServicesResponse:
        services = convert.services_in(self._status.services(), namespace=request.namespace)
        clusters = {c.name: c for c in self._status.clusters()}
        return pb.ListServicesResponse(
            services=[
                convert.service_to_pb(
                    s,
                    host_suffix=self._host_suffix,
                    include_endpoints=request.include_endpoints,
                    clusters=clusters,
                )
                for s in services
            ]
        )

    async def GetService(  # noqa: N802
        self, request: pb.GetServiceRequest, context: Call
    ) -> pb.GetServiceResponse:
        key = _parse(lambda: convert.key_from_pb(request.key))
        service = self._status.service(key)
        if service is None:
            abort(Status.NOT_FOUND, f"no cluster exports {key}")
        return pb.GetServiceResponse(
            service=convert.service_to_pb(
                service,
                host_suffix=self._host_suffix,
                include_endpoints=True,
                clusters={c.name: c for c in self._status.clusters()},
            )
        )

    async def Plan(self, request: pb.PlanRequest, context: Call) -> pb.PlanResponse:  # noqa: N802
        keys = _parse(lambda: frozenset(convert.key_from_pb(k) for k in request.services))
        members = {c.name for c in self._status.clusters()}
        unknown = sorted(set(request.clusters) - members)
        if unknown:
            abort(
                Status.INVALID_ARGUMENT,
                f"not member clusters: {', '.join(unknown)} "
                f"(members: {', '.join(sorted(members))})",
            )
        timeout = self._settings.plan_timeout_seconds
        remaining = context.time_remaining()
        if remaining is not None:
            timeout = min(timeout, remaining)
        try:
            plan = await asyncio.wait_for(self._status.plan(), timeout=timeout)
        except (RetryableError, RuntimeError) as exc:
            abort(Status.UNAVAILABLE, f"cannot plan now: {exc}")
        except TimeoutError:
            abort(
                Status.UNAVAILABLE,
                f"plan did not finish within {timeout:.0f}s: a cluster may be unreachable",
            )
        except PermanentError as exc:
            abort(Status.FAILED_PRECONDITION, f"cannot plan: {exc}")
        if keys:
            known = {s.key for s in self._status.services()} | convert.planned_services(plan)
            missing = sorted(str(k) for k in keys - known)
            if missing:
                abort(
                    Status.NOT_FOUND,
                    f"not a global service and nothing to do for: {', '.join(missing)}",
                )
        clusters = frozenset(ClusterId(c) for c in request.clusters)
        return convert.plan_to_pb(convert.filter_plan(plan, services=keys, clusters=clusters))

    async def WatchEvents(  # noqa: N802
        self, request: pb.WatchEventsRequest, context: Call
    ) -> AsyncIterator[pb.Event]:
        if self.open_streams >= self._settings.max_streams:
            abort(
                Status.RESOURCE_EXHAUSTED,
                f"too many WatchEvents streams (max {self._settings.max_streams})",
            )
        try:
            subscription = self._status.subscribe(max_queue=self._settings.stream_queue)
        except RuntimeError as exc:
            abort(Status.RESOURCE_EXHAUSTED, str(exc))
        self.open_streams += 1
        stop = asyncio.ensure_future(self._stopping.wait())
        get: asyncio.Future[ChangeEvent] | None = None
        previous: int | None = None
        dropped = 0
        try:
            async with subscription:
                while True:
                    get = asyncio.ensure_future(subscription.get())
                    await asyncio.wait({get, stop}, return_when=asyncio.FIRST_COMPLETED)
                    if not get.done():
                        return
                    event = get.result()
                    if previous is not None:
                        dropped += max(0, event.sequence - previous - 1)
                    previous = event.sequence
                    if request.namespace and event.key.namespace != request.namespace:
                        continue
                    yield convert.event_to_pb(event, dropped_before=dropped)
                    dropped = 0
        finally:
            # Two waits on an Event and a Queue, with no cleanup to wait for: cancelling is
            # enough (``cancel_and_wait`` is for tasks that own something).
            self.open_streams -= 1
            stop.cancel()
            if get is not None:
                get.cancel()


def _parse(parse: Callable[[], _T]) -> _T:
    """``parse()``, or abort the RPC with INVALID_ARGUMENT if the request is malformed."""
    try:
        return parse()
    except InvalidRequestError as exc:
        abort(Status.INVALID_ARGUMENT, str(exc))


class ApiServer:
    """The gRPC server on ``listen`` (``host:port``, ``listen.grpc`` in the federation
    config) with its lifecycle: ``await start()``, ``await shutdown()``."""

    def __init__(
        self,
        *,
        status: StatusRegistry,
        host_suffix: str,
        listen: str,
        settings: ApiSettings | None = None,
        security: ApiSecuritySettings | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        drills: DrillSource | None = None,
    ) -> None:
        """``drills``: where ListDrills/WatchDrills read (None: they answer FAILED_PRECONDITION)."""
        self._listen = listen
        self._drills = drills
        self._security = security or ApiSecuritySettings()
        self._status = status
        self._host_suffix = host_suffix
        self._settings = settings or ApiSettings()
        self._now = now
        self.port: int | None = None
        """The bound port once started (useful with ``listen="127.0.0.1:0"``)."""
        self._server: Server | None = None
        self._host: Host | None = None
        self.token_gate: TokenGate | None = None
        """The token check, when ``security.token_file`` is set (counts refusals)."""
        self._servicer: FederationServicer | None = None
        self._health = grpc_std.HealthServicer(("", SERVICE_NAME))
        self._stopping = asyncio.Event()
        self._poller: asyncio.Task[None] | None = None
        self._stopped = False

    async def start(self) -> None:
        """Bind ``listen`` and serve (idempotent); ``port`` is the bound port from then on.

        Raises ``PermanentError`` if the address cannot be bound, ``RuntimeError`` after
        ``shutdown()``."""
        if self._stopped:
            raise RuntimeError("the status API server was shut down; create a new one")
        if self.port is not None:
            return
        listen, security = self._listen, self._security
        self.token_gate = (
            TokenGate(TokenFile(security.token_file)) if security.token_file is not None else None
        )
        host = Host(
            Limits(
                max_request_bytes=self._settings.max_request_bytes,
                max_concurrent_rpcs=self._settings.max_concurrent_rpcs,
            ),
            self.token_gate,
        )
        servicer = FederationServicer(
            status=self._status,
            host_suffix=self._host_suffix,
            settings=self._settings,
            stopping=self._stopping,
            now=self._now,
            drills=self._drills,
        )
        reflection = grpc_std.ReflectionServicer(
            (SERVICE_NAME, grpc_std.HEALTH_SERVICE_NAME, grpc_std.REFLECTION_SERVICE_NAME)
        )
        await self._sync_health()
        server = Server(
            [
                host.service(pb.DESCRIPTOR.services_by_name["FederationService"], pb, servicer),
                host.service(grpc_std.HEALTH_DESCRIPTOR, health_pb2, self._health),
                host.service(grpc_std.REFLECTION_DESCRIPTOR, reflection_pb2, reflection),
            ]
        )
        sock = _bind(listen)
        try:
            await server.start(
                sock=sock, ssl=server_ssl_context(security) if security.tls else None
            )
        except BaseException:
            sock.close()
            raise
        self._server, self._host, self._servicer = server, host, servicer
        self.port = int(sock.getsockname()[1])
        self._poller = asyncio.create_task(self._poll_health(), name="meshfed-api-health")
        log.info("status API listening on %s (gRPC, port %d, %s)", listen, self.port, security.mode)

    @property
    def open_streams(self) -> int:
        """WatchEvents streams open now."""
        return 0 if self._servicer is None else self._servicer.open_streams

    async def shutdown(self) -> None:
        """Report NOT_SERVING, end the streams, let unary RPCs finish. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        if self._poller is not None:
            await cancel_and_wait([self._poller])
        await self._health.enter_graceful_shutdown()
        if self._server is None:
            return
        # The streams end on ``_stopping``; unary RPCs get the grace period, then whatever
        # still runs (a health Watch, a slow Plan) is cancelled with the connections.
        loop = asyncio.get_running_loop()
        until = loop.time() + self._settings.shutdown_grace_seconds
        while self._host is not None and self._host.active and loop.time() < until:
            await asyncio.sleep(0.02)
        self._server.close()
        await self._server.wait_closed()
        log.info("status API stopped")

    async def _sync_health(self) -> None:
        state = grpc_std.SERVING if self._status.ready else grpc_std.NOT_SERVING
        for name in ("", SERVICE_NAME):
            await self._health.set(name, state)

    async def _poll_health(self) -> None:
        while not self._stopping.is_set():
            await self._sync_health()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._stopping.wait(), timeout=self._settings.health_poll_seconds
                )


def _bind(listen: str) -> socket.socket:
    """A listening-ready socket bound to ``listen`` (``host:port``, ``[v6]:port``).

    Bound here rather than by the server so the port is known (``:0``) and no
    SO_REUSEPORT is set: a second federator on the same port must fail, not share it."""
    host, sep, port_text = listen.rpartition(":")
    host = host.strip("[]")
    if not sep or not port_text.isdigit():
        raise PermanentError(_bind_error(listen))
    try:
        infos = socket.getaddrinfo(
            host or None, int(port_text), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise PermanentError(_bind_error(listen)) from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise PermanentError(_bind_error(listen)) from exc
    return sock


def _bind_error(listen: str) -> str:
    return f"cannot listen on {listen} (listen.grpc): is the port in use or the address not local?"

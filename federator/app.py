"""``Federator``: everything ``meshfed federate`` runs, as one object with ``start``/``shutdown``.

It owns the cluster registry (a client per member), the caches, the reconciler, the controller
(queue, workers, result policy), the sources (watches -> caches -> keys), the east-west
gateway prober, the status reporter, the leader elector (its Lease fences every member
client's writes), credential rotation, the HTTP server (/metrics, /healthz, /readyz) and the
gRPC status API - each as configured. The CLI and the tests build this one object instead of
wiring the parts.

Start order follows the data flow backwards: clients, the servers people read (so /healthz
answers and a port clash fails before any work), the controller (somewhere for keys to go),
the sources (keys start to flow), the gateway prober, the status reporter, the leader elector
(a replica that wins enqueues every key; a standby runs everything but writes nothing), then
credential rotation (which may restart sources). ``shutdown()`` runs in reverse, stops every
part even if one fails (and then raises that failure), and closes the clients last. Both are
idempotent; ``start`` shuts down what it started if it fails half-way.
"""

from __future__ import annotations

import logging
import socket
import uuid
from dataclasses import dataclass, field

from federator.api.auth import TokenFile
from federator.api.drill_source import DrillSource
from federator.api.server import ApiServer, ApiSettings
from federator.core.config import FederationConfig
from federator.core.model import ClusterId
from federator.drills.controller import DrillController
from federator.drills.guards import GuardClient
from federator.drills.steps import DrillSteps
from federator.errors import ConfigError
from federator.health import HealthServer
from federator.heap import HeapSettings, HeapTrimmer
from federator.kube.client import Credentials, KubeClient, Timeouts
from federator.kube.clusters import ClusterRegistry
from federator.kube.credentials_watch import CredentialsWatcher, RotationSettings
from federator.kube.leader import LeaderElector
from federator.lifecycle import Component
from federator.metrics import FederatorMetrics
from federator.reactor.cache import ClusterCache
from federator.reactor.controller import Controller, ControllerSettings
from federator.reactor.gateways import GatewayProber
from federator.reactor.reporter import ReporterSettings, StatusReporter
from federator.reactor.sources import Sources, SourceSettings
from federator.reactor.world import CacheWorld
from federator.reconcile.reconciler import Reconciler
from federator.status import StatusRegistry

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FederatorSettings:
    """Runtime knobs of the federator process (the federation config holds the rest)."""

    controller: ControllerSettings = field(default_factory=ControllerSettings)
    """Workers, queue bound, slow retry after a Forbidden."""
    sources: SourceSettings = field(default_factory=SourceSettings)
    """Watch timing."""
    reporter: ReporterSettings = field(default_factory=ReporterSettings)
    """Status refresh period and readiness grace."""
    rotation: RotationSettings = field(default_factory=RotationSettings)
    """How often kubeconfig Secrets and files are re-read."""
    api: ApiSettings = field(default_factory=ApiSettings)
    """Limits of the gRPC status API."""
    timeouts: Timeouts = field(default_factory=Timeouts)
    """Apiserver client timeouts."""
    heap: HeapSettings = field(default_factory=HeapSettings)
    """How often freed memory is given back to the OS (``federator.heap``)."""
    retired_client_grace_seconds: float = 40.0
    """After a credential rotation the old client is closed this long after the swap (longer
    than a request timeout, so requests in flight on it finish)."""
    serve_http: bool = True
    """Serve /metrics, /healthz and /readyz on ``listen.http``."""
    serve_api: bool = True
    """Serve the gRPC status API on ``listen.grpc``."""
    watch_credentials: bool = True
    """Pick up rotated member credentials (Secrets and files) without a restart."""
    identity: str = ""
    """This replica's identity in the leader Lease; empty: ``<hostname>-<random>`` (in a Pod
    the hostname is the Pod's name)."""


def default_identity() -> str:
    """``<hostname>-<8 hex>``: unique per process, readable in the Lease."""
    return f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"


class Federator:
    """See the module docstring."""

    def __init__(
        self,
        *,
        config: FederationConfig,
        settings: FederatorSettings | None = None,
        home: Credentials | None = None,
    ) -> None:
        """``home``: credentials of the federator's own cluster, where kubeconfig Secrets are
        read (needed only if a member uses ``clusters[].secret``)."""
        config.validate()
        if config.drills.enabled and home is None:
            raise ConfigError(
                "drills.enabled needs the home cluster, where the Drill objects live: run the "
                "federator in a Pod or pass --home-kubeconfig"
            )
        self.config = config
        self.settings = s = settings or FederatorSettings()
        self.metrics = FederatorMetrics()
        self.status = StatusRegistry(clusters=config.cluster_ids)
        election = config.leader_election
        self.elector: LeaderElector | None = None
        if election.enabled:
            self.elector = LeaderElector(
                client=lambda: self.registry.home,
                namespace=config.namespace,
                identity=s.identity or default_identity(),
                settings=election,
                metrics=self.metrics,
                on_started_leading=self._takeover,
            )
        self.registry = ClusterRegistry(
            config,
            home=home,
            timeouts=s.timeouts,
            retire_after=s.retired_client_grace_seconds,
            fence=self.elector,
            lease_home=election.enabled or config.drills.enabled,  # Drill objects live there
        )
        self.caches = {c.name: ClusterCache(settings=c) for c in config.clusters}
        self.reconciler = Reconciler(
            config=config,
            world=CacheWorld(self.caches),
            clients=self.registry.clients,
            metrics=self.metrics,
            status=self.status,
            leading=(lambda: True) if self.elector is None else (lambda: self.leading),
            overlays=lambda: () if self.drills is None else self.drills.overlays(),
        )
        self.controller = Controller(
            reconciler=self.reconciler,
            metrics=self.metrics,
            resync_period_seconds=config.resync_period_seconds,
            settings=s.controller,
        )
        self.sources = Sources(
            config=config,
            clients=self.registry.clients,
            caches=self.caches,
            imported=self.reconciler.imported,
            sink=self.controller,
            metrics=self.metrics,
            settings=s.sources,
            owned=self.reconciler.owned,
        )
        self.prober = GatewayProber(
            config=config, caches=self.caches, sink=self.controller, metrics=self.metrics
        )
        self.reporter = StatusReporter(
            caches=self.caches,
            imported=self.reconciler.imported,
            status=self.status,
            metrics=self.metrics,
            planner=self.reconciler.plan_all,
            settings=s.reporter,
            leadership=None if self.elector is None else self.elector.leadership,
            gateways=self.prober.health,
        )
        self.guards: GuardClient | None = None
        self.drills: DrillController | None = None
        if config.drills.enabled:  # docs/drills.md, Runtime
            self.guards = GuardClient(settings=config.drills)
            self.drills = DrillController(
                namespace=config.namespace,
                home=lambda: self.registry.home,
                steps=DrillSteps(
                    config=config,
                    clients=self.registry.clients,
                    reconciler=self.reconciler,
                    world=CacheWorld(self.caches),
                    guards=self.guards,
                    metrics=self.metrics,
                    enqueue=self.controller.add,
                ),
                leading=lambda: self.leading,
                metrics=self.metrics,
                settings=config.drills,
            )
        self.heap = HeapTrimmer(s.heap)
        self.health: HealthServer | None = None
        self.api: ApiServer | None = None
        self.rotation: CredentialsWatcher | None = None
        self._running: list[Component] = []
        self._started = False
        self._stopped = False

    @property
    def clients(self) -> dict[ClusterId, KubeClient]:
        """The client in use per member cluster (replaced in place on rotation)."""
        return self.registry.clients

    async def start(self) -> None:
        """Open the clients and start every part; returns once they run (idempotent).

        Raises ``ConfigError`` (a kubeconfig or Secret cannot be used) or ``PermanentError``
        (a port cannot be bound), after shutting down what it started."""
        if self._started:
            return
        self._started = True
        try:
            await self.registry.open()
            s, listen = self.settings, self.config.listen
            if s.serve_http:
                host, port = listen.http_address
                http = self.config.http
                token = http.transport.token_file
                self.health = HealthServer(
                    host=host,
                    port=port,
                    metrics=self.metrics,
                    status=self.status,
                    security=http,
                    authorizer=TokenFile(token, where="http.tokenFile") if token else None,
                )
                await self._start(self.health)
            if s.serve_api:
                self.api = ApiServer(
                    status=self.status,
                    host_suffix=self.config.host_suffix,
                    listen=listen.grpc,
                    settings=s.api,
                    security=self.config.api,
                    drills=DrillSource(client=lambda: self.registry.home),
                )
                await self._start(self.api)
            await self._start(self.heap)
            await self._start(self.controller)
            await self._start(self.sources)
            await self._start(self.prober)
            await self._start(self.reporter)
            if self.elector is not None:
                await self._start(self.elector)
            if self.guards is not None and self.drills is not None:
                await self._start(self.guards)
                await self._start(self.drills)
            if s.watch_credentials:
                self.rotation = CredentialsWatcher(
                    config=self.config,
                    home=self.registry.home,
                    loaded=self.registry.loaded,
                    on_rotate=self.replace_client,
                    metrics=self.metrics,
                    settings=s.rotation,
                    timeouts=s.timeouts,
                )
                await self._start(self.rotation)
        except BaseException:
            await self.shutdown()
            raise
        log.info(
            "federating %d clusters; http on %s, gRPC on %s",
            len(self.clients),
            self.config.listen.http if self.health else "-",
            self.config.listen.grpc if self.api else "-",
        )

    async def _start(self, part: Component) -> None:
        await part.start()
        self._running.append(part)

    async def shutdown(self) -> None:
        """Stop every part in reverse start order, then close the clients (idempotent).

        A part whose shutdown fails does not keep the others running: the first failure is
        raised once everything is stopped."""
        if self._stopped:
            return
        self._stopped = True
        failures: list[Exception] = []
        running, self._running = self._running, []
        for part in reversed(running):
            try:
                await part.shutdown()
            except Exception as exc:
                log.exception("shutting down %s failed", type(part).__name__)
                failures.append(exc)
        await self.registry.aclose()
        if failures:
            raise failures[0]

    async def replace_client(self, name: ClusterId, client: KubeClient) -> None:
        """Use ``client`` for cluster ``name`` from now on (rotated credentials, R7).

        The registry swaps it in (the reconciler reads the same dict) and closes the old one
        after a grace period; that cluster's watches restart with it and every key is
        offered again (work refused with the old credentials is retried)."""
        await self.registry.replace(name, client)
        await self.sources.restart(name)
        log.info("cluster %s: new client in use, watches restarted", name)

    @property
    def leading(self) -> bool:
        """This replica may write (always, without leader election)."""
        return self.elector is None or self.elector.leading

    async def _takeover(self) -> None:
        await self.sources.takeover()

    def resync_all(self) -> None:
        """Offer every key to the controller now (what ``resyncPeriod`` does)."""
        self.sources.enqueue_all()

    @property
    def idle(self) -> bool:
        """Nothing queued, being reconciled or waiting for a requeue."""
        return self.controller.idle

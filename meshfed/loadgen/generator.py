"""``LoadGenerator``: simulated requests at a bounded rate, outcomes from istiod's live routes.

A TEST TOOL (docs/loadgen.md). Each simulated request walks a call chain (Bookinfo:
productpage -> reviews -> ratings). Hop ``i`` is decided (``meshfed.loadgen.model.decide``)
from what the istiod of the caller's cluster serves a sidecar there: the first hop from the
origin cluster, later hops from the cluster the previous hop's endpoint is in (when that
cluster is known, else the origin's). A hop that fails (>= 400) ends the chain, as the caller
gets the error. A hop's duration is a seeded base latency plus its injected delay plus the
duration of the hops it called. Every ``flush_interval_s`` the cumulative metrics, the spans
and the access logs of the requests since the last flush are written to the collector, in the
background (one flush at a time), so a slow collector does not slow the requests down.

Bounded by ``seconds`` and ``max_requests``; all outcome randomness comes from one
``random.Random(seed)``. ``start()`` returns once the origin's routes and endpoints arrived;
``shutdown()`` (idempotent) flushes what is left and stops the xDS watches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from meshfed.loadgen.exporters import Endpoints, Exporter, ExportError, HopSpan, SimulatedCall
from meshfed.loadgen.model import LatencyModel, Outcome, Request, decide
from meshfed.loadgen.telemetry import HopRecord, MetricsBook
from meshfed.loadgen.watch import XdsWatch

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Hop:
    """One service of the call chain."""

    service: str
    """Its short name (``reviews``): ``destination_service_name``."""
    host: str
    """The host a client calls (the federated one: ``reviews.default.svc.clusterset.local``)."""
    port: int = 9080
    namespace: str = "default"


@dataclass(frozen=True, slots=True)
class Place:
    """A member cluster as the generator needs it: its istiod and its locality."""

    name: str
    istiod: str
    """``host:port`` of istiod's plaintext xDS."""
    region: str = ""
    zone: str = ""
    network: str = ""


@dataclass(frozen=True, slots=True)
class LoadSettings:
    origin: str
    """The cluster the simulated clients run in (``source_cluster`` of the first hop)."""
    places: tuple[Place, ...]
    chain: tuple[Hop, ...]
    source_workload: str = "loadgen"
    namespace: str = "default"
    rate: float = 10.0
    """Simulated requests per second."""
    seconds: float = 30.0
    max_requests: int = 100_000
    seed: int = 1
    header_sets: tuple[tuple[tuple[str, str], ...], ...] = ((),)
    """Each request carries one of these header sets, chosen in turn (round robin)."""
    latency: LatencyModel = field(default_factory=LatencyModel)
    flush_interval_s: float = 1.0
    ready_timeout_s: float = 30.0
    gateways: Mapping[str, str] = field(default_factory=dict)
    """Endpoint address -> member cluster (east-west gateways, pod IPs), before locality."""
    istio_version: str = ""

    def validate(self) -> None:
        problems = []
        if self.rate <= 0:
            problems.append(f"rate={self.rate}: must be > 0 requests per second")
        if self.seconds <= 0:
            problems.append(f"seconds={self.seconds}: must be > 0")
        if self.max_requests <= 0:
            problems.append(f"max_requests={self.max_requests}: must be > 0")
        if not self.chain:
            problems.append("chain is empty: name at least one service to call")
        if self.origin not in {p.name for p in self.places}:
            problems.append(f"origin={self.origin!r} is not one of the places (give its istiod)")
        if not self.header_sets:
            problems.append("header_sets is empty: use ((),) for requests without headers")
        if problems:
            raise ValueError("load generator settings: " + "; ".join(problems))


@dataclass(slots=True)
class LoadStats:
    requests: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    export_errors: list[str] = field(default_factory=list)
    flushes: int = 0
    route_versions: int = 0
    """xDS pushes applied at the origin while running."""


class LoadGenerator:
    """See the module docstring."""

    def __init__(self, settings: LoadSettings, endpoints: Endpoints) -> None:
        settings.validate()
        self.settings = settings
        self.stats = LoadStats()
        self._rng = random.Random(settings.seed)  # a simulation: reproducible on purpose
        self._book = MetricsBook()
        self._exporter = Exporter(endpoints)
        self._watches: dict[str, XdsWatch] = {}
        self._pending: list[SimulatedCall] = []
        self._task: asyncio.Task[None] | None = None
        self._flushing: asyncio.Task[None] | None = None
        self._last_flush_ms: int | None = None
        self._stopped = False

    # ---- lifecycle
    async def start(self) -> None:
        if self._task is not None or self._stopped:
            return
        from meshfed.mesh.node import SidecarIdentity, sidecar_node  # noqa: PLC0415

        s = self.settings
        by_locality = {f"{p.region}/{p.zone}": p.name for p in s.places if p.region}
        routes = tuple(sorted({str(h.port) for h in s.chain}))
        for p in s.places:
            identity = SidecarIdentity(
                cluster=p.name,
                namespace=s.namespace,
                name=s.source_workload,
                region=p.region,
                zone=p.zone,
                network=p.network,
                labels={"app": s.source_workload},
                **({"istio_version": s.istio_version} if s.istio_version else {}),
            )
            watch = XdsWatch(
                address=p.istiod,
                node=sidecar_node(identity),
                route_names=routes,
                by_address=s.gateways,
                by_locality=by_locality,
            )
            watch.start()
            self._watches[p.name] = watch
        origin = self._watches[s.origin]
        if not await asyncio.to_thread(origin.wait_ready, s.ready_timeout_s):
            await self.shutdown()
            raise RuntimeError(
                f"istiod of {s.origin} at {origin.address} served no routes and endpoints for "
                f"ports {', '.join(routes)} within {s.ready_timeout_s:g}s"
                + (f" ({origin.error})" if origin.error else "")
                + ": is it running (`meshfed sandbox status`) and is the host exported?"
            )
        self._last_flush_ms = time.time_ns() // 1_000_000
        self._task = asyncio.create_task(self._run(), name="loadgen")

    async def wait(self) -> LoadStats:
        """Until the bounded run ends (seconds or max_requests)."""
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        return self.stats

    async def shutdown(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            await self._settle()
            await self._flush()
        for w in self._watches.values():
            await asyncio.to_thread(w.stop)
        await self._exporter.aclose()

    # ---- the loop
    async def _run(self) -> None:
        s = self.settings
        loop = asyncio.get_running_loop()
        start = loop.time()
        next_flush = start + s.flush_interval_s
        first_version = self._watches[s.origin].state.version
        while True:
            elapsed = loop.time() - start
            done = elapsed >= s.seconds
            # catch up on every request due so far, also when the loop ran late (a slow
            # flush, a loaded machine): the run's count is rate x seconds whatever the pace
            due = min(s.max_requests, int(min(elapsed, s.seconds) * s.rate) + (0 if done else 1))
            while self.stats.requests < due:
                self._simulate()
            self.stats.route_versions = self._watches[s.origin].state.version - first_version
            if done or self.stats.requests >= s.max_requests:
                break
            if loop.time() >= next_flush:
                next_flush = loop.time() + s.flush_interval_s
                # in the background, so a slow collector does not slow the requests down;
                # one at a time, so each series' samples arrive in time order
                if self._flushing is None or self._flushing.done():
                    self._flushing = asyncio.create_task(self._flush(), name="loadgen-flush")
            await asyncio.sleep(min(0.05, 1.0 / s.rate))
        await self._settle()
        await self._flush()

    async def _settle(self) -> None:
        """Wait for a background flush still running (it is never cancelled half-way)."""
        if self._flushing is not None and not self._flushing.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._flushing)

    def _simulate(self) -> None:
        s = self.settings
        n = self.stats.requests
        headers = s.header_sets[n % len(s.header_sets)]
        self.stats.requests += 1
        decided: list[tuple[Hop, Outcome, float, str, str]] = []
        caller, caller_cluster = s.source_workload, s.origin
        for hop in s.chain:
            watch = self._watches.get(caller_cluster) or self._watches[s.origin]
            state = watch.state
            request = Request(hop.host, hop.port, "/", dict(headers))
            out = decide(request, state.hosts, state.endpoints, self._rng)
            own = s.latency.sample(self._rng) + out.injected_delay_ms
            decided.append((hop, out, own, caller, caller_cluster))
            if out.status >= 400:
                break
            caller, caller_cluster = workload_of(hop, out), out.destination_cluster
        first = decided[0][1].status
        self.stats.by_status[first] = self.stats.by_status.get(first, 0) + 1
        # durations include the callees', so they are summed from the last hop back
        total = 0.0
        durations = []
        for _, _, own, _, _ in reversed(decided):
            total += own
            durations.append(total)
        durations.reverse()
        trace_id = os.urandom(16)
        start_ns = time.time_ns()
        spans: list[HopSpan] = []
        parent = b""
        for (hop, out, _, src, src_cluster), duration in zip(decided, durations, strict=True):
            record = HopRecord(
                source_workload=src,
                source_namespace=s.namespace,
                source_cluster=src_cluster,
                destination_service=hop.host,
                destination_service_name=hop.service,
                destination_namespace=hop.namespace,
                destination_workload=workload_of(hop, out),
                destination_version=out.subset or "unknown",
                destination_cluster=out.destination_cluster,
                response_code=out.status,
                response_flags=out.flags,
                duration_ms=duration,
                port=hop.port,
                injected_delay_ms=out.injected_delay_ms,
            )
            self._book.record(record)
            span_id = os.urandom(8)
            spans.append(HopSpan(span_id, parent, start_ns, start_ns + int(duration * 1e6), record))
            parent = span_id
        self._pending.append(SimulatedCall(trace_id, tuple(spans), headers))

    async def _flush(self) -> None:
        now_ms = time.time_ns() // 1_000_000
        calls, self._pending = self._pending, []
        series = self._book.series(now_ms, self._last_flush_ms)
        self._last_flush_ms = now_ms
        self.stats.flushes += 1
        for what, send in (
            ("metrics", self._exporter.write_metrics(series)),
            ("spans", self._exporter.write_spans(calls, self.settings.origin)),
            ("logs", self._exporter.write_logs(calls)),
        ):
            try:
                await send
            except ExportError as err:
                self.stats.export_errors.append(str(err))
                log.warning("load generator: %s not written: %s", what, err)


def workload_of(hop: Hop, out: Outcome) -> str:
    """``destination_workload``: ``<service>-<subset>`` for a subset route (Bookinfo's
    ``reviews-v3``), the service name otherwise, ``unknown`` when no upstream was reached."""
    if not out.cluster:
        return "unknown"
    return f"{hop.service}-{out.subset}" if out.subset else hop.service

"""A continuous xDS watch: what istiod serves one sidecar, kept current as pushes arrive.

One ADS stream (``meshfed.mesh.xds.AdsClient``), read by a daemon thread: CDS for every
cluster, EDS for every EDS cluster CDS names (re-subscribed when the set changes), LDS, and
RDS for the HTTP route configurations of the ports the generator calls (a sidecar's outbound
route table for port 9080 is named ``9080``). Every push replaces the matching part of the
state, so a VirtualService a drill applies mid-run changes the next simulated request once
istiod has pushed it. A failed stream is reopened after a pause; the last state stays in use
meanwhile (a sidecar keeps its last config too).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from meshfed.loadgen.envoy import endpoints_of, virtual_hosts
from meshfed.loadgen.model import EndpointPick, VirtualHost

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RouteState:
    """An immutable snapshot the request loop reads without locks."""

    hosts: tuple[VirtualHost, ...] = ()
    endpoints: Mapping[str, tuple[EndpointPick, ...]] = field(default_factory=dict)
    version: int = 0
    """Increases with every applied push."""
    pushed_at: float = 0.0
    """``time.monotonic()`` of the last applied push."""


class XdsWatch:
    """See the module docstring. ``start``/``stop`` are idempotent."""

    def __init__(
        self,
        *,
        address: str,
        node: Any,
        route_names: tuple[str, ...],
        by_address: Mapping[str, str],
        by_locality: Mapping[str, str],
    ) -> None:
        self.address = address
        self._node = node
        self._route_names = route_names
        self._by_address = dict(by_address)
        self._by_locality = dict(by_locality)
        self.state = RouteState()
        self.error: str | None = None
        self._routes: dict[str, tuple[VirtualHost, ...]] = {}
        self._endpoints: dict[str, tuple[EndpointPick, ...]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="loadgen-xds", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def wait_ready(self, timeout: float) -> bool:
        """True once routes and endpoints have both arrived."""
        return self._ready.wait(timeout)

    def _run(self) -> None:
        from meshfed.mesh.xds import CDS, EDS, LDS, RDS, AdsClient, XdsError, eds_names  # noqa: PLC0415

        while not self._stop.is_set():
            try:
                with AdsClient(address=self.address, node=self._node) as client:
                    client.subscribe(CDS)
                    subscribed_eds: list[str] = []
                    routes_asked = False
                    while not self._stop.is_set():
                        try:
                            update = client.next_update(1.0)
                        except XdsError as err:
                            if "sent nothing" in str(err):
                                continue
                            raise
                        if update.type_url == CDS:
                            names = eds_names(update.by_name())
                            if names != subscribed_eds:
                                subscribed_eds = names
                                client.subscribe(EDS, names)
                            if not routes_asked:  # Envoy's order: CDS, EDS, then LDS, RDS
                                routes_asked = True
                                client.subscribe(LDS)
                                client.subscribe(RDS, list(self._route_names))
                        elif update.type_url == EDS:
                            self._apply_eds(update.by_name())
                        elif update.type_url == RDS:
                            self._apply_rds(update.by_name())
                    self.error = None
            except XdsError as err:
                self.error = str(err)
                log.warning("xDS watch of %s: %s; reconnecting", self.address, err)
                self._stop.wait(1.0)

    def _apply_eds(self, resources: Mapping[str, Any]) -> None:
        for name, cla in resources.items():
            self._endpoints[name] = endpoints_of(
                cla, by_address=self._by_address, by_locality=self._by_locality
            )
        self._publish()

    def _apply_rds(self, resources: Mapping[str, Any]) -> None:
        for name, rc in resources.items():
            self._routes[name] = virtual_hosts(rc)
        self._publish()

    def _publish(self) -> None:
        hosts = tuple(vh for name in sorted(self._routes) for vh in self._routes[name])
        self.state = RouteState(
            hosts, dict(self._endpoints), self.state.version + 1, time.monotonic()
        )
        if self._routes and self._endpoints:
            self._ready.set()

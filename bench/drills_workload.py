"""The drills benchmark's workload (``bench/drills.py``): what each drill changes and how
its effect shows in istiod's xDS.

``plan(i)`` makes drill ``i`` (step kind, service, target clusters and values all depend on
``i``, so no two drills are alike) with the predicate that recognises its step in a target's
RDS/EDS; ``Watcher`` keeps one ADS stream per target istiod and stamps every push on
arrival; ``Drills`` creates and reads Drill objects with the official client. Not part of CI.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client, config

from meshfed.mesh._envoy import Cluster
from meshfed.mesh.node import sidecar_node
from meshfed.mesh.views import cluster_view
from meshfed.mesh.xds import CDS, EDS, RDS, AdsClient, XdsError
from tests.helpers.drills import NAMESPACE, describe_route, drill_doc
from tests.helpers.istio import IstioSandbox, clusterset_host, gateways, outbound

PORT = 9080
CLUSTERS = ("c1", "c2", "c3")
SCOPES = (CLUSTERS, ("c2", "c3"), ("c3",), ("c1", "c3"), ("c1", "c2"))
KINDS = ("delay", "abort", "shift", "route", "drain")
WALL = time.time() - time.monotonic()
"""Add to ``time.monotonic()`` (the ADS client's stamps) for wall-clock time."""


class Watcher:
    """One ADS stream to a cluster's istiod; a thread keeps what it serves for ``hosts`` now
    (RDS text, EDS gateways) and, per push, its arrival time and the state after it."""

    def __init__(self, sb: IstioSandbox, cluster: str, hosts: list[str]) -> None:
        self.hosts = hosts
        self.routes: dict[str, str | None] = {}
        self.endpoints: dict[str, dict[str, int]] = {}
        self.history: list[tuple[float, dict[str, str | None], dict[str, dict[str, int]]]] = []
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.ads = AdsClient(address=sb.xds(cluster), node=sidecar_node(sb.identity(cluster)))
        names = [outbound(h, PORT) for h in hosts]
        self.ads.subscribe(CDS)
        self.ads.wait_for(CDS, lambda u: all(n in u.by_name() for n in names), timeout=120)
        self.ads.subscribe(EDS, names)
        self.ads.subscribe(RDS, [str(PORT)])
        self.thread = threading.Thread(target=self._read, name=f"ads-{cluster}", daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while not self.stopped.is_set():
            try:
                update = self.ads.next_update(1.0)
            except XdsError:
                continue  # nothing pushed within a second (or the stream closed at the end)
            by_name = update.by_name()
            with self.lock:
                if update.type_url == RDS:
                    route = by_name.get(str(PORT))
                    self.routes = {h: describe_route(route, h, PORT) if route else None
                                   for h in self.hosts}  # fmt: skip
                elif update.type_url == EDS:
                    for h in self.hosts:
                        if (name := outbound(h, PORT)) in by_name:
                            view = cluster_view(Cluster(name=name), by_name[name])
                            self.endpoints[h] = gateways(view)
                else:
                    continue
                self.history.append((update.received + WALL, dict(self.routes),
                                     dict(self.endpoints)))  # fmt: skip

    def first(self, host: str, accept: Any, after: float) -> float | None:
        """The arrival time of the first push after ``after`` whose state ``accept`` takes."""
        with self.lock:
            for at, routes, eps in self.history:
                if at >= after and accept(routes.get(host), eps.get(host)):
                    return at
        return None

    def now(self, host: str) -> tuple[str | None, dict[str, int] | None]:
        with self.lock:
            return self.routes.get(host), self.endpoints.get(host)

    def close(self) -> None:
        self.stopped.set()
        self.ads.close()


@dataclass(frozen=True)
class Planned:
    name: str
    service: str
    targets: tuple[str, ...]
    step: dict[str, Any]
    accept: Any
    """(route text, gateways) -> the step is served."""
    changed: tuple[str, ...]
    """The targets whose istiod serves something else during the step."""
    breach: bool


def plan(i: int, services: list[str], gateway_of: dict[str, str], breach: bool) -> Planned:
    """Drill ``i``: its step kind, service, scope and values all depend on ``i``."""
    kind, service = KINDS[i % len(KINDS)], services[i % len(services)]
    targets = SCOPES[(i // len(KINDS) + i) % len(SCOPES)]
    host = clusterset_host(service)
    step: dict[str, Any]
    changed = targets
    if kind == "delay":
        secs, pct = 1 + i % 7, 10 + (i * 7) % 90
        step = {"delay": {"percentage": pct, "fixedDelay": f"{secs}s"}}
        accept: Any = lambda r, _e, s=secs: r is not None and f"delay={s}s" in r  # noqa: E731
    elif kind == "abort":
        code = 500 + i % 5
        step = {"abort": {"percentage": 5 + i % 90, "httpStatus": code}}
        accept = lambda r, _e, c=code: r is not None and f"abort={c}" in r  # noqa: E731
    elif kind == "shift":
        w = 5 + (i * 11) % 90
        step = {"shift": {"destinations": [{"cluster": "c1", "weight": 100 - w},
                                           {"cluster": "c2", "weight": w}]}}  # fmt: skip
        want = (f"|cluster-c1|{host}:{100 - w}", f"|cluster-c2|{host}:{w}")
        accept = lambda r, _e, x=want: r is not None and all(p in r for p in x)  # noqa: E731
    elif kind == "route":
        user, to = f"user-{i}", ("c2", "c1")[i % 2]
        step = {"route": {"headers": {"end-user": {"exact": user}}, "cluster": to}}
        want = (f"end-user={user}", f"|cluster-{to}|")
        accept = lambda r, _e, x=want: r is not None and all(p in r for p in x)  # noqa: E731
    else:
        drained = ("c1", "c2")[i % 2]
        step = {"drain": {"clusters": [drained]}}
        gone = gateway_of[drained]
        accept = lambda _r, e, g=gone: e is not None and g not in e  # noqa: E731
        changed = tuple(t for t in targets if t != drained)
        if not changed:  # the drained cluster keeps its own pods: widen the scope
            targets, changed = CLUSTERS, tuple(c for c in CLUSTERS if c != drained)
    name = f"b{i:02d}-{kind}-{service.rsplit('-', 1)[-1]}"
    return Planned(name, service, targets, step, accept, changed, breach)


def spec_of(p: Planned) -> dict[str, Any]:
    duration, ttl = ("2m", "3m") if p.breach else ("2s", "2m")
    selector = f'destination_service_name="{p.service}",bench_drill="{p.name}"'
    expr = f"sum(istio_requests_total{{{selector}}}) > 0"
    return {
        "services": [{"namespace": "default", "name": p.service}],
        "scope": {"clusters": list(p.targets)},
        "ttl": ttl,
        "steps": [{"name": "s0", "duration": duration, **p.step}],
        "abortWhen": [{"name": "bench-errors", "expr": expr, "interval": "1s"}],
    }


class Drills:
    """Create and read Drill objects in the home cluster (the official client: fast reads)."""

    WHERE = ("meshfed.io", "v1alpha1", NAMESPACE, "drills")

    def __init__(self, kubeconfig: Path) -> None:
        api = config.new_client_from_config(str(kubeconfig), context="c1")
        self.custom = client.CustomObjectsApi(api)

    def create(self, name: str, spec: dict[str, Any]) -> None:
        self.custom.create_namespaced_custom_object(*self.WHERE, drill_doc(name, spec))

    def wait(self, name: str, accept: Any, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            obj = self.custom.get_namespaced_custom_object(*self.WHERE, name)
            status = dict(obj.get("status") or {})
            if accept(status):
                return status
            time.sleep(0.1)
        raise TimeoutError(f"drill {name}: no acceptable status in {timeout:g}s: {status}")

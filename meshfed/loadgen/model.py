"""The pure outcome model: routes and endpoints as plain values, and one request's outcome.

Envoy's route table is reduced to what decides a simulated request (``meshfed.loadgen.envoy``
builds these values from istiod's RDS/EDS): the first route whose header matches hold is
taken (as Envoy does); its HTTP fault may abort (with a status) or delay the request, each with
its own percentage; a weighted-cluster action picks a subset cluster by weight; the endpoint
is picked by weight among the endpoints of the highest-priority locality group, and its
cluster is the destination cluster. Everything random comes from the caller's seeded
``random.Random``, so a run is reproducible. No sockets, no protobuf.
"""

from __future__ import annotations

import enum
import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


class MatchKind(enum.StrEnum):
    EXACT = "exact"
    PREFIX = "prefix"
    SUFFIX = "suffix"
    REGEX = "regex"
    PRESENT = "present"


@dataclass(frozen=True, slots=True)
class HeaderMatch:
    """One ``HeaderMatcher``: a request header (lower-case name) against a value."""

    name: str
    kind: MatchKind
    value: str = ""
    invert: bool = False

    def matches(self, headers: Mapping[str, str]) -> bool:
        got = headers.get(self.name.lower())
        if self.kind is MatchKind.PRESENT:
            hit = got is not None
        elif got is None:
            hit = False
        elif self.kind is MatchKind.EXACT:
            hit = got == self.value
        elif self.kind is MatchKind.PREFIX:
            hit = got.startswith(self.value)
        elif self.kind is MatchKind.SUFFIX:
            hit = got.endswith(self.value)
        else:
            hit = re.fullmatch(self.value, got) is not None
        return hit != self.invert


@dataclass(frozen=True, slots=True)
class Fault:
    """Envoy's HTTP fault filter config of a route (Istio's VirtualService ``fault``)."""

    delay_ms: float = 0.0
    delay_percent: float = 0.0
    abort_status: int = 0
    abort_percent: float = 0.0
    headers: tuple[HeaderMatch, ...] = ()
    """The fault filter's own header matchers (Istio matches on the route instead)."""

    def applies(self, headers: Mapping[str, str]) -> bool:
        return all(h.matches(headers) for h in self.headers)


@dataclass(frozen=True, slots=True)
class Target:
    """One upstream cluster of a route action, with its weight (1 for a single cluster)."""

    cluster: str
    """``outbound|<port>|<subset>|<host>``."""
    weight: int = 1

    @property
    def subset(self) -> str:
        parts = self.cluster.split("|")
        return parts[2] if len(parts) == 4 else ""


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    headers: tuple[HeaderMatch, ...]
    prefix: str | None
    """Path prefix; ``None`` when the route matches on another path rule (taken as a match)."""
    targets: tuple[Target, ...]
    fault: Fault | None = None
    direct_status: int = 0
    """A ``direct_response`` route's status (no upstream)."""

    def matches(self, path: str, headers: Mapping[str, str]) -> bool:
        if self.prefix is not None and not path.startswith(self.prefix):
            return False
        return all(h.matches(headers) for h in self.headers)


@dataclass(frozen=True, slots=True)
class VirtualHost:
    domains: tuple[str, ...]
    routes: tuple[Route, ...]


@dataclass(frozen=True, slots=True)
class EndpointPick:
    """One endpoint of an EDS cluster: where it lives and how Envoy weighs it."""

    address: str
    cluster: str
    """The member cluster it leads to (from its locality or address)."""
    locality: str
    weight: int = 1
    priority: int = 0
    healthy: bool = True


@dataclass(frozen=True, slots=True)
class Request:
    """One simulated request to ``host`` (its ``:authority``) on ``port``."""

    host: str
    port: int
    path: str = "/"
    headers: Mapping[str, str] | None = None


class Flag(enum.StrEnum):
    """Envoy's response flags the generator can produce."""

    NONE = "-"
    FAULT_INJECTED = "FI"
    DELAY_INJECTED = "DI"
    NO_ROUTE = "NR"
    NO_HEALTHY_UPSTREAM = "UH"


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int
    flags: str
    cluster: str
    """The chosen upstream cluster name; empty when no route or a direct response."""
    subset: str
    destination_cluster: str
    """The member cluster of the chosen endpoint; ``unknown`` when none."""
    address: str
    injected_delay_ms: float
    route: str

    @property
    def error(self) -> bool:
        return self.status >= 500


def host_matches(domain: str, host: str, port: int) -> bool:
    """Envoy's domain match: exact (``host`` or ``host:port``), ``*.suffix``, ``prefix*``, ``*``."""
    for candidate in (host, f"{host}:{port}"):
        if domain in (candidate, "*"):
            return True
        if domain.startswith("*") and candidate.endswith(domain[1:]):
            return True
        if domain.endswith("*") and candidate.startswith(domain[:-1]):
            return True
    return False


def find_virtual_host(hosts: tuple[VirtualHost, ...], host: str, port: int) -> VirtualHost | None:
    """Exact domains win over wildcards, as in Envoy; otherwise the first that matches."""
    for vh in hosts:
        if host in vh.domains or f"{host}:{port}" in vh.domains:
            return vh
    return next((vh for vh in hosts if any(host_matches(d, host, port) for d in vh.domains)), None)


def weighted_choice(items: tuple[tuple[T, int], ...], rng: random.Random) -> T:
    """One item, with probability proportional to its (positive) weight."""
    total = sum(w for _, w in items)
    point = rng.uniform(0, total)
    acc = 0.0
    for item, weight in items:
        acc += weight
        if point < acc:
            return item
    return items[-1][0]


def pick_endpoint(endpoints: tuple[EndpointPick, ...], rng: random.Random) -> EndpointPick | None:
    """By weight among the healthy endpoints of the lowest (best) priority present."""
    healthy = [e for e in endpoints if e.healthy]
    if not healthy:
        return None
    best = min(e.priority for e in healthy)
    group = tuple((e, max(e.weight, 1)) for e in healthy if e.priority == best)
    return weighted_choice(group, rng)


def decide(
    request: Request,
    hosts: tuple[VirtualHost, ...],
    endpoints: Mapping[str, tuple[EndpointPick, ...]],
    rng: random.Random,
) -> Outcome:
    """The outcome of ``request`` under the routes and endpoints a client is served."""
    headers = {k.lower(): v for k, v in (request.headers or {}).items()}
    vh = find_virtual_host(hosts, request.host, request.port)
    route = (
        None
        if vh is None
        else next((r for r in vh.routes if r.matches(request.path, headers)), None)
    )
    if route is None:
        return Outcome(404, Flag.NO_ROUTE, "", "", "unknown", "", 0.0, "")
    delay = 0.0
    flags: list[str] = []
    fault = route.fault if route.fault is not None and route.fault.applies(headers) else None
    # Envoy's fault filter rolls the delay first, then the abort, each on its own percentage.
    if fault is not None and fault.delay_ms > 0 and rng.random() * 100 < fault.delay_percent:
        delay = fault.delay_ms
        flags.append(Flag.DELAY_INJECTED)
    if fault is not None and fault.abort_status and rng.random() * 100 < fault.abort_percent:
        flags.append(Flag.FAULT_INJECTED)
        return Outcome(
            fault.abort_status, ",".join(flags), "", "", "unknown", "", delay, route.name
        )
    if route.direct_status:
        return Outcome(
            route.direct_status, ",".join(flags) or "-", "", "", "unknown", "", delay, route.name
        )
    if not route.targets:
        return Outcome(404, Flag.NO_ROUTE, "", "", "unknown", "", delay, route.name)
    target = weighted_choice(tuple((t, max(t.weight, 0)) for t in route.targets), rng)
    ep = pick_endpoint(endpoints.get(target.cluster, ()), rng)
    if ep is None:
        flags.append(Flag.NO_HEALTHY_UPSTREAM)
        return Outcome(
            503, ",".join(flags), target.cluster, target.subset, "unknown", "", delay, route.name
        )
    return Outcome(
        200,
        ",".join(flags) or Flag.NONE.value,
        target.cluster,
        target.subset,
        ep.cluster,
        ep.address,
        delay,
        route.name,
    )


@dataclass(frozen=True, slots=True)
class LatencyModel:
    """The base latency (before injected delay) of one hop: log-normal, seeded by the caller."""

    median_ms: float = 20.0
    sigma: float = 0.4

    def sample(self, rng: random.Random) -> float:
        return self.median_ms * math.exp(rng.gauss(0.0, self.sigma))

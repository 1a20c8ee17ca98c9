"""A drill's specification as frozen values: what to change, where, for how long, and when to stop.

Built by ``federator.core.drills.parse`` from the ``Drill`` resource's ``spec`` (or the same
YAML file the CLI reads), after validation; every later stage (render, plan, journal) reads
only these values. Istio's names are kept where the concept is Istio's: ``percentage``,
``fixedDelay``, ``httpStatus``, header matches with ``exact``/``prefix``/``regex``.

Steps run one after the other; during step *i* the mesh is the baseline plus step *i*'s
overlay only (steps do not accumulate), so a canary ``10 -> 50 -> 100`` is three ``shift``
steps and every step can be planned on its own.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass

from federator.core.model import ENDPOINT_CLUSTER_LABEL, ClusterId, ServiceKey

API_VERSION = "meshfed.io/v1alpha1"
KIND = "Drill"
VERSION_LABEL = "version"
"""The pod label a ``version`` subset selects (Istio's and Bookinfo's convention)."""


class MatchKind(enum.StrEnum):
    """How a header value is matched (Istio ``StringMatch``)."""

    EXACT = "exact"
    PREFIX = "prefix"
    REGEX = "regex"


@dataclass(frozen=True, slots=True)
class HeaderMatch:
    """One request header condition, e.g. ``end-user: {exact: jason}``."""

    name: str
    """Header name, lower case (HTTP/2 and Envoy compare them lower-cased)."""
    kind: MatchKind
    value: str


@dataclass(frozen=True, slots=True)
class SubsetRef:
    """A set of endpoints of a global service: by version label or by cluster.

    Exactly one of ``version`` and ``cluster`` is set. A cluster subset selects the
    ServiceEntry endpoints labelled ``meshfed.io/cluster: <cluster>`` (istiod overwrites
    Istio's own ``topology.istio.io/cluster`` on ServiceEntry endpoints).
    """

    version: str | None = None
    cluster: ClusterId | None = None

    @property
    def label(self) -> tuple[str, str]:
        """The (label key, value) the DestinationRule subset selects."""
        if self.cluster is not None:
            return ENDPOINT_CLUSTER_LABEL, self.cluster
        assert self.version is not None
        return VERSION_LABEL, self.version

    @property
    def name(self) -> str:
        """Subset name in the DestinationRule: ``version-<v>`` or ``cluster-<c>`` (a DNS label:
        the two kinds never clash, and Istio puts it into SNI names)."""
        if self.cluster is not None:
            kind, value = "cluster", str(self.cluster)
        else:
            kind, value = "version", self.version or ""
        slug = re.sub(r"[^a-z0-9-]+", "-", value.lower()).strip("-")
        return f"{kind}-{slug}"[:63].rstrip("-")

    def __str__(self) -> str:
        return f"cluster {self.cluster}" if self.cluster is not None else f"version {self.version}"


@dataclass(frozen=True, slots=True)
class WeightedSubset:
    subset: SubsetRef
    weight: int
    """Percent of the traffic, 0-100; the weights of one shift step sum to 100."""


@dataclass(frozen=True, slots=True)
class Drain:
    """Withdraw these clusters' endpoints (and those of every cluster in these regions) from
    every other target cluster's ServiceEntries: a cluster-loss or region-loss drill."""

    clusters: tuple[ClusterId, ...] = ()
    regions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Delay:
    """Istio fault injection: delay ``percentage`` % of the (matching) requests."""

    percentage: float
    fixed_delay: str
    """An Istio duration (``7s``, ``500ms``), written as given into ``fault.delay.fixedDelay``."""
    headers: tuple[HeaderMatch, ...] = ()
    """Only requests matching all of these get the fault; empty: every request."""


@dataclass(frozen=True, slots=True)
class Abort:
    """Istio fault injection: answer ``percentage`` % of the (matching) requests with
    ``http_status`` without forwarding them."""

    percentage: float
    http_status: int
    headers: tuple[HeaderMatch, ...] = ()


@dataclass(frozen=True, slots=True)
class Shift:
    """Weighted routing between subsets (a canary, or a share of traffic to one cluster)."""

    destinations: tuple[WeightedSubset, ...]


@dataclass(frozen=True, slots=True)
class Route:
    """Requests matching ``headers`` go to ``subset``; the others keep the default route."""

    headers: tuple[HeaderMatch, ...]
    subset: SubsetRef


Action = Drain | Delay | Abort | Shift | Route


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    duration_seconds: float
    action: Action
    services: tuple[ServiceKey, ...] = ()
    """The drill's services this step changes; empty: all of them."""

    @property
    def kind(self) -> str:
        return type(self.action).__name__.lower()


@dataclass(frozen=True, slots=True)
class Guard:
    """A PromQL condition over meshfed's store. For an ``abortWhen`` guard: the drill rolls
    back once the expression has returned a non-empty result at every evaluation for
    ``for_seconds`` (0: the first evaluation that sees it)."""

    name: str
    expr: str
    interval_seconds: float = 10.0
    for_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class Preconditions:
    """When a drill must not start. Stale clusters in scope and a freeze always refuse it."""

    not_when: tuple[Guard, ...] = ()
    """Conditions that must not hold at start (evaluated once; ``interval``/``for`` unused)."""


@dataclass(frozen=True, slots=True)
class Hypothesis:
    """What the verdict is judged against.

    The hypothesis holds when the drill ran every step without a guard breach and none of
    ``steady_state`` conditions held at any evaluation during the drill (they are evaluated
    like guards but never abort). Empty ``steady_state``: the ``abortWhen`` guards are the
    hypothesis (no breach = confirmed).
    """

    description: str = ""
    steady_state: tuple[Guard, ...] = ()


@dataclass(frozen=True, slots=True)
class Scope:
    """Target clusters: these clusters plus every cluster of these regions; both empty: all."""

    clusters: tuple[ClusterId, ...] = ()
    regions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DrillSpec:
    name: str
    """``metadata.name`` (a DNS label: it is a label value and part of object names)."""
    services: tuple[ServiceKey, ...]
    steps: tuple[Step, ...]
    ttl_seconds: float
    """Hard upper bound on the whole drill, from start to the start of rollback."""
    scope: Scope = Scope()
    abort_when: tuple[Guard, ...] = ()
    preconditions: Preconditions = Preconditions()
    hypothesis: Hypothesis = Hypothesis()
    allow_outage: bool = False
    """Run even if a step leaves a service with no endpoint in some target cluster."""
    halt: bool = False
    """Set by ``meshfed drill halt``: stop now and roll back."""
    generation: int = 0
    """``metadata.generation`` of the resource (0 for a file); written on drill objects."""

    def step_services(self, step: Step) -> tuple[ServiceKey, ...]:
        return step.services or self.services

    @property
    def total_duration_seconds(self) -> float:
        return sum(s.duration_seconds for s in self.steps)

    def subsets(self, key: ServiceKey) -> tuple[SubsetRef, ...]:
        """Every subset of ``key`` any step routes to, sorted by name, without repeats."""
        found: dict[str, SubsetRef] = {}
        for step in self.steps:
            if key not in self.step_services(step):
                continue
            if isinstance(step.action, Shift):
                for d in step.action.destinations:
                    found.setdefault(d.subset.name, d.subset)
            elif isinstance(step.action, Route):
                found.setdefault(step.action.subset.name, step.action.subset)
        return tuple(found[n] for n in sorted(found))


def resolve_clusters(
    clusters: tuple[ClusterId, ...],
    regions: tuple[str, ...],
    clusters_by_region: Mapping[str, tuple[ClusterId, ...]],
) -> frozenset[ClusterId]:
    """``clusters`` plus every cluster of ``regions`` (unknown regions contribute nothing)."""
    out = set(clusters)
    for region in regions:
        out.update(clusters_by_region.get(region, ()))
    return frozenset(out)


def targets(
    spec: DrillSpec, clusters_by_region: Mapping[str, tuple[ClusterId, ...]]
) -> tuple[ClusterId, ...]:
    """The drill's target clusters, sorted: the scope, or every cluster if it is empty."""
    scope = spec.scope
    if not scope.clusters and not scope.regions:
        return tuple(sorted({c for cs in clusters_by_region.values() for c in cs}))
    return tuple(sorted(resolve_clusters(scope.clusters, scope.regions, clusters_by_region)))

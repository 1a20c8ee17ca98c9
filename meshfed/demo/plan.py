"""The demo's plan, as values: where Bookinfo runs, the drills that replay the Istio webinar's
steps, what istiod must serve in every cluster while each drill step runs, which telemetry
shows it in the store, and the rows of the final table.

Pure: the runner turns this into kubectl, Drill objects, xDS reads and store queries. Keeping
it apart lets the unit tests check every Drill document against the drill parser and every
expectation against hand-built xDS views, without a sandbox.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

HOME = "c1"
"""The federator's home cluster: Drill objects live there."""
DRILL_NAMESPACE = "meshfed-system"
APP_NAMESPACE = "default"
PORT = 9080
HOST_SUFFIX = "svc.clusterset.local"
CLUSTERS = ("c1", "c2", "c3")
SERVICES = ("productpage", "details", "reviews", "ratings")
JASON = ("end-user", "jason")
LOAD_CHAIN = ("productpage", "reviews", "ratings")
"""Bookinfo's call chain the load generator walks (details is a leaf of productpage)."""

PLACEMENT: dict[str, tuple[str, ...]] = {
    "c1": ("productpage-v1", "details-v1", "reviews-v1", "reviews-v2"),
    "c2": ("reviews-v3", "ratings-v1"),
    "c3": ("ratings-v1",),
}
"""Bookinfo's Deployments per cluster; each cluster also gets the Services (and their
ServiceExports) of the Deployments it runs."""


def host(service: str) -> str:
    """The global host the federator gives an exported service."""
    return f"{service}.{APP_NAMESPACE}.{HOST_SUFFIX}"


def service_of(deployment: str) -> str:
    """``reviews-v2`` -> ``reviews`` (Bookinfo's naming)."""
    return deployment.rsplit("-", 1)[0]


def services_in(cluster: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(service_of(d) for d in PLACEMENT[cluster]))


def subset(version: str) -> str:
    """The DestinationRule subset name the drill controller gives a version (``version-v2``)."""
    return f"version-{version}"


# ---- what istiod must serve ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class HeaderRoute:
    """RDS: the service's virtual host has a route matching ``header`` exactly whose only
    target is ``subset``."""

    service: str
    header: tuple[str, str]
    subset: str

    def describe(self) -> str:
        return f"RDS {self.service}: {self.header[0]}={self.header[1]} -> {self.subset}"


@dataclass(frozen=True, slots=True)
class FaultRoute:
    """RDS: a route matching ``header`` carries a fixed delay or an HTTP abort (100 %)."""

    service: str
    header: tuple[str, str]
    delay_ms: float = 0.0
    abort_status: int = 0

    def describe(self) -> str:
        what = f"delay {self.delay_ms / 1000:g}s" if self.delay_ms else f"abort {self.abort_status}"
        return f"RDS {self.service}: {self.header[0]}={self.header[1]} -> {what}"


@dataclass(frozen=True, slots=True)
class Weights:
    """RDS: the default route splits the service's traffic over these subsets."""

    service: str
    weights: tuple[tuple[str, int], ...]

    def describe(self) -> str:
        split = " ".join(f"{s}:{w}" for s, w in self.weights)
        return f"RDS {self.service}: weights {split}"


@dataclass(frozen=True, slots=True)
class Drained:
    """EDS: the service keeps endpoints, none of them ``cluster``'s east-west gateway."""

    service: str
    cluster: str

    def describe(self) -> str:
        return f"EDS {self.service}: endpoints, none via {self.cluster}'s gateway"


@dataclass(frozen=True, slots=True)
class Exported:
    """CDS/EDS: the service's global host has endpoints (among them the east-west gateways
    of every cluster in ``via``)."""

    service: str
    via: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"EDS {self.service}: endpoints"


Expectation = HeaderRoute | FaultRoute | Weights | Drained | Exported


@dataclass(frozen=True, slots=True)
class Signal:
    """A store query whose value shows the step in the telemetry: a ``sum(increase(...))``
    over a window from the step's start (``{window}`` is filled in), seen when ``> 0``."""

    promql: str
    what: str = ""

    def query(self, window_s: int) -> str:
        return self.promql.replace("{window}", f"{max(window_s, 2)}s")


@dataclass(frozen=True, slots=True)
class Phase:
    """One drill step (``step`` index) and what every cluster in ``clusters`` must serve."""

    step: int
    title: str
    expect: Expectation
    clusters: tuple[str, ...] = CLUSTERS
    signal: Signal | None = None


@dataclass(frozen=True, slots=True)
class DemoDrill:
    """A webinar step as a Drill, with its phases in step order."""

    webinar: str
    name: str
    spec: dict[str, Any]
    phases: tuple[Phase, ...]

    def document(self) -> dict[str, Any]:
        return {
            "apiVersion": "meshfed.io/v1alpha1",
            "kind": "Drill",
            "metadata": {"name": self.name, "namespace": DRILL_NAMESPACE},
            "spec": self.spec,
        }


@dataclass(frozen=True, slots=True)
class Timing:
    """How long each drill step lasts; ``--quick`` is the CI variant."""

    step_seconds: int
    settle_seconds: int
    """How long an expectation may take to show up before the step is marked not seen."""

    @classmethod
    def of(cls, *, quick: bool) -> Timing:
        return cls(step_seconds=12, settle_seconds=10) if quick else cls(30, 20)


def _requests(labels: str) -> str:
    return f'sum(increase(istio_requests_total{{reporter="source",{labels}}}[{{window}}]))'


def _versions(service: str, version: str) -> str:
    """Requests to a version subset: the load generator labels them with the subset's name."""
    return _requests(
        f'destination_service_name="{service}",destination_version="{subset(version)}"'
    )


def _svc(service: str) -> list[dict[str, str]]:
    return [{"namespace": APP_NAMESPACE, "name": service}]


def _jason() -> dict[str, dict[str, str]]:
    return {JASON[0]: {"exact": JASON[1]}}


def drills(timing: Timing) -> tuple[DemoDrill, ...]:
    """The webinar's steps after installation, in order."""
    d = f"{timing.step_seconds}s"
    ttl = f"{timing.step_seconds * 4 + 60}s"
    reviews, ratings = "reviews", "ratings"
    guard_expr = (
        'sum(rate(istio_requests_total{reporter="source",destination_service_name="ratings",'
        'response_code=~"5.."}[10s])) / sum(rate(istio_requests_total{reporter="source",'
        'destination_service_name="ratings"}[10s])) > 0.6'
    )
    return (
        DemoDrill(
            "Request routing by user: jason sees reviews v2",
            "demo-route-jason",
            {
                "services": _svc(reviews),
                "ttl": ttl,
                "steps": [
                    {
                        "name": "jason-to-v2",
                        "duration": d,
                        "route": {"headers": _jason(), "version": "v2"},
                    }
                ],
            },
            (
                Phase(
                    0,
                    "route jason -> v2",
                    HeaderRoute(reviews, JASON, subset("v2")),
                    signal=Signal(
                        _versions("reviews", "v2"),
                        what="reviews v2 requests",
                    ),
                ),
            ),
        ),
        DemoDrill(
            "Fault injection: a 7s delay on ratings for jason",
            "demo-delay-jason",
            {
                "services": _svc(ratings),
                "ttl": ttl,
                "steps": [
                    {
                        "name": "delay-7s",
                        "duration": d,
                        "delay": {"percentage": 100, "fixedDelay": "7s", "headers": _jason()},
                    }
                ],
            },
            (
                Phase(
                    0,
                    "delay 7s for jason",
                    FaultRoute(ratings, JASON, delay_ms=7000),
                    signal=Signal(
                        _requests('destination_service_name="ratings",response_flags="DI"'),
                        what="ratings requests delayed (DI)",
                    ),
                ),
            ),
        ),
        DemoDrill(
            "Fault injection: HTTP 500 from ratings for jason",
            "demo-abort-jason",
            {
                "services": _svc(ratings),
                "ttl": ttl,
                "steps": [
                    {
                        "name": "abort-500",
                        "duration": d,
                        "abort": {"percentage": 100, "httpStatus": 500, "headers": _jason()},
                    }
                ],
            },
            (
                Phase(
                    0,
                    "abort 500 for jason",
                    FaultRoute(ratings, JASON, abort_status=500),
                    signal=Signal(
                        _requests(
                            'destination_service_name="ratings",'
                            'response_code="500",response_flags="FI"'
                        ),
                        what="ratings 500s injected (FI)",
                    ),
                ),
            ),
        ),
        DemoDrill(
            "Traffic shifting: reviews canary to v3, 50/50 then 100",
            "demo-canary-v3",
            {
                "services": _svc(reviews),
                "ttl": ttl,
                "steps": [
                    {
                        "name": "v3-50",
                        "duration": d,
                        "shift": {
                            "destinations": [
                                {"version": "v1", "weight": 50},
                                {"version": "v3", "weight": 50},
                            ]
                        },
                    },
                    {
                        "name": "v3-100",
                        "duration": d,
                        "shift": {"destinations": [{"version": "v3", "weight": 100}]},
                    },
                ],
            },
            (
                Phase(
                    0,
                    "canary v1:50 v3:50",
                    Weights(reviews, ((subset("v1"), 50), (subset("v3"), 50))),
                    signal=Signal(
                        _versions("reviews", "v3"),
                        what="reviews v3 requests",
                    ),
                ),
                Phase(
                    1,
                    "canary v3:100",
                    Weights(reviews, ((subset("v3"), 100),)),
                    signal=Signal(
                        _versions("reviews", "v3"),
                        what="reviews v3 requests",
                    ),
                ),
            ),
        ),
        DemoDrill(
            "Failover: drain region-a from ratings, guarded by its 5xx ratio",
            "demo-failover-ratings",
            {
                "services": _svc(ratings),
                "ttl": ttl,
                "steps": [
                    {"name": "drain-region-a", "duration": d, "drain": {"regions": ["region-a"]}}
                ],
                "abortWhen": [{"name": "ratings-5xx", "expr": guard_expr, "interval": "2s"}],
            },
            (
                Phase(
                    0,
                    "fail ratings over to region-b",
                    Drained(ratings, "c2"),
                    clusters=("c1", "c3"),
                    signal=Signal(
                        _requests('destination_service_name="ratings",destination_cluster="c3"'),
                        what="ratings requests failed over to c3",
                    ),
                ),
            ),
        ),
    )


# ---- the summary table --------------------------------------------------------------------
@dataclass(slots=True)
class Row:
    """One line of the final table."""

    step: str
    expected: str
    seen: str = "not seen"
    ok: bool = False
    latency_s: float | None = None
    """Propagation: the step's start until istiod served it in every cluster checked."""
    where: str = ""
    detail: list[str] = field(default_factory=list)

    def latency_text(self) -> str:
        return "-" if self.latency_s is None else f"{self.latency_s:.2f}s"


def row_dict(row: Row) -> dict[str, Any]:
    return {
        "step": row.step,
        "expected": row.expected,
        "seen": row.seen,
        "ok": row.ok,
        "latency_s": row.latency_s,
        "where": row.where,
        "detail": list(row.detail),
    }


def verdict(rows: list[Row]) -> tuple[int, int]:
    """(steps seen, steps in all)."""
    return sum(1 for r in rows if r.ok), len(rows)

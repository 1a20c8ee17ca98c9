"""The load generator against the 3-cluster Istio sandbox and a real ``meshfed collect``.

reviews runs in c1 (2 pods) and c2 (1 pod), ratings in c2 and c3; the federator exports them.
Clients simulated in c3 (which runs no reviews) reach reviews through c1's and c2's
east-west gateways, weighted 2:1 by istiod. Every assertion reads the telemetry back through
the store's Prometheus API, and the routes the outcomes come from are the ones c3's istiod
serves after a VirtualService is applied there. Each run has its own ``source_workload`` so
its series are its own; the RNG is seeded, the bounds are binomial (4 standard deviations).
"""

from __future__ import annotations

import math
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from meshfed.loadgen.model import VirtualHost
from tests.helpers.federator_harness import app_docs, apply, kubectl
from tests.helpers.istio import (
    MESHFED,
    IstioSandbox,
    clusterset_host,
    gateways,
    outbound,
    wait_served,
)
from tests.integration.loadgen.conftest import Collector, run_load, settings, wait_routes

REVIEWS = clusterset_host("reviews")
JASON = (("end-user", "jason"),)
OTHERS = (("end-user", "ann"),)


def within_binomial(value: float, n: int, p: float) -> bool:
    """``value`` (a share of ``n`` trials) within 4 standard deviations of ``p``."""
    return abs(value - p) <= 4 * math.sqrt(p * (1 - p) / n) + 1 / n


def versioned(name: str, version: str, replicas: int) -> list[dict[str, Any]]:
    """``app_docs`` with a ``<name>-<version>`` Deployment whose pods carry ``version``
    (as Bookinfo's reviews-v1/v2/v3 do); the Service selects every version."""
    deployment, svc = app_docs(name, replicas=replicas)
    deployment["metadata"]["name"] = f"{name}-{version}"
    deployment["spec"]["selector"]["matchLabels"]["version"] = version
    deployment["spec"]["template"]["metadata"]["labels"] = {"app": name, "version": version}
    return [deployment, svc]


PLACED = [
    ("c1", "reviews", "v1", 2),
    ("c2", "reviews", "v3", 1),
    ("c2", "ratings", "v1", 1),
    ("c3", "ratings", "v1", 1),
]


@pytest.fixture(scope="module")
def bookinfo(istio_sandbox: IstioSandbox, mesh_federator: str) -> Iterator[IstioSandbox]:
    """reviews v1 (2 pods) in c1 and v3 (1 pod) in c2; ratings in c2 and c3."""
    sb = istio_sandbox
    for ctx, name, version, replicas in PLACED:
        apply(sb.kubeconfig, ctx, versioned(name, version, replicas))
    try:
        wait_served(
            sb, "c3", outbound(REVIEWS, 9080),
            lambda v: gateways(v) == {"127.0.1.1": 2, "127.0.2.1": 1}, what="reviews via gateways",
        )  # fmt: skip
        yield sb
    finally:
        for ctx, name, version, _ in PLACED:
            for obj in (f"deployment/{name}-{version}", f"service/{name}"):
                kubectl(sb.kubeconfig, ctx, "delete", obj, "--wait=false", check=False)


def virtual_service(name: str, http: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"hosts": [REVIEWS], "http": http},
    }


def to_reviews(**more: Any) -> dict[str, Any]:
    return {"route": [{"destination": {"host": REVIEWS}}], **more}


def jason_match() -> list[dict[str, Any]]:
    return [{"headers": {"end-user": {"exact": "jason"}}}]


@pytest.fixture
def applied(bookinfo: IstioSandbox) -> Iterator[list[dict[str, Any]]]:
    """Objects the test applies in c3; deleted afterwards, and c3 back to one plain route."""
    docs: list[dict[str, Any]] = []
    yield docs
    for d in docs:
        kind, name = d["kind"].lower(), d["metadata"]["name"]
        kubectl(bookinfo.kubeconfig, "c3", "delete", kind, name, "--wait=false", check=False)
    wait_routes(bookinfo, "c3", REVIEWS, lambda vh: len(vh.routes) == 1, what="the default route")


def ratio(collector: Collector, workload: str, errors: str = '{response_code=~"5.."}') -> float:
    sel = f'reporter="source",source_workload="{workload}"'
    bad = errors.replace("{", "{" + sel + ",")
    got = collector.query(
        f"sum(rate(istio_requests_total{bad}[1m])) / sum(rate(istio_requests_total{{{sel}}}[1m]))"
    )
    return float(got[0]["value"][1]) if got else 0.0


def test_without_virtual_service_rate_and_cluster_split_match_eds(
    bookinfo: IstioSandbox, collector: Collector
) -> None:
    started = time.time()
    (stats,) = run_load(
        collector, settings(bookinfo, "c3", ("reviews",), "lg-split", rate=40.0, seconds=8.0)
    )
    n = stats.requests
    assert 0.8 * 40 * 8 <= n <= 40 * 8 + 1, n
    sel = '{reporter="source",source_workload="lg-split",destination_service_name="reviews"}'
    total = collector.scalar(f"sum(istio_requests_total{sel})")
    assert total == n
    split = collector.by(
        "destination_cluster", f"sum by (destination_cluster) (istio_requests_total{sel})"
    )
    assert set(split) == {"c1", "c2"}, split
    assert within_binomial(split["c1"] / n, n, 2 / 3), split
    # the server side of the same requests, reported in the cluster that served them
    served = collector.by(
        "cluster",
        'sum by (cluster) (istio_requests_total{reporter="destination",'
        'source_workload="lg-split",destination_service_name="reviews"})',
    )
    assert served == split, (served, split)
    assert (
        collector.scalar(
            'sum(istio_requests_total{reporter="source",source_workload="lg-split",response_code!="200"})'
            " or vector(0)"
        )
        == 0
    )
    # the store's counters grow at the configured rate (read at two instants 4 s apart)
    early = collector.scalar(f"sum(istio_requests_total{sel})", at=started + 3)
    late = collector.scalar(f"sum(istio_requests_total{sel})", at=started + 7)
    assert 40 * 0.7 <= (late - early) / 4 <= 40 * 1.3, (early, late)


def test_abort_for_jason_shows_as_5xx_ratio_for_jason_only(
    bookinfo: IstioSandbox, collector: Collector, applied: list[dict[str, Any]]
) -> None:
    vs = virtual_service(
        "lg-abort",
        [
            to_reviews(
                match=jason_match(),
                fault={"abort": {"percentage": {"value": 50}, "httpStatus": 500}},
            ),
            to_reviews(),
        ],
    )
    applied.append(vs)
    apply(bookinfo.kubeconfig, "c3", [vs])
    wait_routes(bookinfo, "c3", REVIEWS, _has_fault, what="the abort fault")
    jason, others = run_load(
        collector,
        settings(bookinfo, "c3", ("reviews",), "lg-abort-jason", header_sets=(JASON,), rate=40.0,
                 seconds=6.0, seed=11),
        settings(bookinfo, "c3", ("reviews",), "lg-abort-others", header_sets=(OTHERS,),
                 rate=40.0, seconds=6.0, seed=12),
    )  # fmt: skip
    assert within_binomial(ratio(collector, "lg-abort-jason"), jason.requests, 0.5)
    assert ratio(collector, "lg-abort-others") == 0.0
    flags = collector.by(
        "response_flags",
        "sum by (response_flags) (istio_requests_total"
        '{source_workload="lg-abort-jason",response_code="500"})',
    )
    assert set(flags) == {"FI"}, flags
    assert others.by_status == {200: others.requests}


def test_delay_for_jason_shows_in_p99(
    bookinfo: IstioSandbox, collector: Collector, applied: list[dict[str, Any]]
) -> None:
    vs = virtual_service(
        "lg-delay",
        [
            to_reviews(
                match=jason_match(),
                fault={"delay": {"percentage": {"value": 100}, "fixedDelay": "3s"}},
            ),
            to_reviews(),
        ],
    )
    applied.append(vs)
    apply(bookinfo.kubeconfig, "c3", [vs])
    wait_routes(bookinfo, "c3", REVIEWS, _has_fault, what="the delay fault")
    run_load(
        collector,
        settings(bookinfo, "c3", ("reviews",), "lg-delay-jason", header_sets=(JASON,),
                 rate=20.0, seconds=4.0),
        settings(bookinfo, "c3", ("reviews",), "lg-delay-others", header_sets=(OTHERS,),
                 rate=20.0, seconds=4.0),
    )  # fmt: skip

    def p99(workload: str) -> float:
        return collector.scalar(
            "histogram_quantile(0.99, sum by (le) (rate(istio_request_duration_milliseconds_bucket"
            f'{{source_workload="{workload}"}}[1m])))'
        )

    assert 2500 < p99("lg-delay-jason") <= 5000
    assert p99("lg-delay-others") <= 250


def test_weighted_shift_between_version_subsets(
    bookinfo: IstioSandbox, collector: Collector, applied: list[dict[str, Any]]
) -> None:
    """A canary 50/50 v1 -> v3: the federated endpoints carry the pods' ``version``, so
    istiod's subset clusters hold the right gateways (v3: c2's, v1: c1's), and the split
    shows in ``destination_version`` and ``destination_cluster``."""
    subsets = [{"name": v, "labels": {"version": v}} for v in ("v1", "v3")]
    dr = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": "lg-shift", "namespace": "default"},
        "spec": {"host": REVIEWS, "subsets": subsets},
    }
    weighted = [{"destination": {"host": REVIEWS, "subset": v}, "weight": 50} for v in ("v1", "v3")]
    vs = virtual_service("lg-shift", [{"route": weighted}])
    applied.extend([vs, dr])
    apply(bookinfo.kubeconfig, "c3", [dr, vs])
    for version, expected in (("v3", {"127.0.2.1": 1}), ("v1", {"127.0.1.1": 2})):
        wait_served(
            bookinfo, "c3", f"outbound|9080|{version}|{REVIEWS}",
            lambda v, e=expected: v is not None and gateways(v) == e,  # type: ignore[misc]
            what=f"subset {version}'s endpoints",
        )  # fmt: skip
    wait_routes(
        bookinfo, "c3", REVIEWS, lambda vh: len(vh.routes[0].targets) == 2, what="50/50 weights"
    )
    (stats,) = run_load(
        collector,
        settings(bookinfo, "c3", ("reviews",), "lg-shift", rate=40.0, seconds=6.0, seed=5),
    )
    sel = '{reporter="source",source_workload="lg-shift"}'
    versions = collector.by(
        "destination_version", f"sum by (destination_version) (istio_requests_total{sel})"
    )
    assert set(versions) == {"v1", "v3"}, versions
    assert within_binomial(versions["v3"] / stats.requests, stats.requests, 0.5), versions
    pairs = collector.query(
        f"sum by (destination_version, destination_cluster) (istio_requests_total{sel})"
    )
    assert {
        (r["metric"]["destination_version"], r["metric"]["destination_cluster"]) for r in pairs
    } == {
        ("v1", "c1"),
        ("v3", "c2"),
    }


def test_bookinfo_chain_spans_and_logs_share_the_trace(
    bookinfo: IstioSandbox, collector: Collector
) -> None:
    """reviews -> ratings: the second hop is decided from the istiod of the cluster the
    first hop landed in, its span is the child of the first, and the access logs carry the
    trace id."""
    (stats,) = run_load(
        collector,
        settings(bookinfo, "c3", ("reviews", "ratings"), "lg-chain", rate=10.0, seconds=2.0),
    )
    ratings = collector.by(
        "source_cluster",
        # reviews-v1 too: an endpoint with a version label (the shift test's pods) names the
        # calling workload by its version, as Istio's workload names do
        'sum by (source_cluster) (istio_requests_total{reporter="source",'
        'source_workload=~"reviews(-v.+)?",destination_service_name="ratings"})',
    )
    assert sum(ratings.values()) == stats.by_status.get(200), (ratings, stats)
    assert set(ratings) <= {"c1", "c2"}, ratings
    base = f"http://{collector.endpoints.http}"
    search = httpx.get(f"{base}/api/search", params={"limit": 200}, timeout=10).json()
    pairs = []
    for t in search["traces"]:
        body = httpx.get(f"{base}/api/traces/{t['traceID']}", timeout=10).json()
        spans = [sp for b in body["batches"] for ss in b["scopeSpans"] for sp in ss["spans"]]
        if len(spans) == 2:
            pairs.append((t["traceID"], spans))
            break
    assert pairs, "no two-span trace stored"
    trace_id, spans = pairs[0]
    by_name = {sp["name"].split(".")[0]: sp for sp in spans}
    assert by_name["ratings"]["parentSpanId"] == by_name["reviews"]["spanId"]
    logs = httpx.get(f"{base}/api/logs", params={"limit": 1000}, timeout=10).json()["logs"]
    assert any(rec.get("traceId") == trace_id for rec in logs)


def _has_fault(vh: VirtualHost) -> bool:
    return any(r.fault is not None for r in vh.routes)


def test_cli_against_the_sandbox(bookinfo: IstioSandbox, collector: Collector) -> None:
    e = collector.endpoints
    out = subprocess.run(
        [MESHFED, "loadgen", "--sandbox", str(bookinfo.directory), "--cluster", "c3",
         "--chain", "reviews", "--collector", e.http, "--otlp-http", e.otlp_http,
         "--forward", e.forward, "--rate", "20", "--seconds", "2", "--workload", "lg-cli",
         "--headers", "end-user=jason", "--seed", "3"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "requests, status {200:" in out.stderr, out.stderr
    total = collector.scalar(
        'sum(istio_requests_total{reporter="source",source_workload="lg-cli"})'
    )
    assert 30 <= total <= 41, total

"""The demo's plan: its Drill documents pass the drill parser, its expectations judge
hand-built xDS views right, Bookinfo is split across the clusters as planned."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from federator.core.drills.parse import parse_drill
from federator.core.drills.spec import Abort, Delay, Drain, Route, Shift
from meshfed.demo import bookinfo, state
from meshfed.demo.checks import check_endpoints, check_routes
from meshfed.demo.plan import (
    JASON,
    Drained,
    Exported,
    FaultRoute,
    HeaderRoute,
    Row,
    Signal,
    Timing,
    Weights,
    drills,
    host,
    subset,
    verdict,
)
from meshfed.loadgen.model import Fault, HeaderMatch, MatchKind, Target, VirtualHost
from meshfed.loadgen.model import Route as EnvoyRoute
from meshfed.mesh.views import ClusterView, EndpointView, TlsView

pytestmark = pytest.mark.unit

GATEWAYS = {"c1": "127.0.1.1", "c2": "127.0.2.1", "c3": "127.0.3.1"}


@pytest.mark.parametrize("quick", [pytest.param(True, id="quick"), pytest.param(False, id="full")])
def test_every_drill_parses_and_fits_its_ttl(quick: bool) -> None:
    timing = Timing.of(quick=quick)
    plan = drills(timing)
    kinds = []
    for d in plan:
        spec = parse_drill(d.document())
        assert spec.name == d.name
        assert sum(s.duration_seconds for s in spec.steps) <= spec.ttl_seconds
        assert [p.step for p in d.phases] == list(range(len(spec.steps)))
        kinds += [type(s.action) for s in spec.steps]
    assert kinds == [Route, Delay, Abort, Shift, Shift, Drain], "the webinar's order"


def test_failover_is_guarded_and_drains_a_region() -> None:
    failover = parse_drill(drills(Timing.of(quick=True))[-1].document())
    assert failover.abort_when and failover.abort_when[0].expr.startswith("sum(rate(")
    assert failover.steps[0].action == Drain(regions=("region-a",))


def _cluster(version: str, service: str = "reviews") -> str:
    return f"outbound|9080|{subset(version)}|{host(service)}"


def _vh(*routes: EnvoyRoute, service: str = "reviews") -> tuple[VirtualHost, ...]:
    return (VirtualHost((host(service), f"{host(service)}:9080"), routes),)


JASON_MATCH = HeaderMatch("end-user", MatchKind.EXACT, "jason")
DEFAULT = EnvoyRoute("default", (), "/", (Target(f"outbound|9080||{host('reviews')}"),))


@pytest.mark.parametrize(
    ("expect", "hosts", "holds"),
    [
        pytest.param(HeaderRoute("reviews", JASON, subset("v2")),
                     _vh(EnvoyRoute("r", (JASON_MATCH,), "/", (Target(_cluster("v2")),)), DEFAULT),
                     True, id="route-to-v2"),
        pytest.param(HeaderRoute("reviews", JASON, subset("v2")),
                     _vh(EnvoyRoute("r", (JASON_MATCH,), "/", (Target(_cluster("v3")),)), DEFAULT),
                     False, id="route-to-another-subset"),
        pytest.param(HeaderRoute("reviews", JASON, subset("v2")), _vh(DEFAULT), False,
                     id="baseline-has-no-jason-route"),
        pytest.param(HeaderRoute("reviews", JASON, subset("v2")), (), False, id="no-virtual-host"),
        pytest.param(HeaderRoute("reviews", JASON, subset("v2")), None, False, id="no-table"),
        pytest.param(FaultRoute("ratings", JASON, delay_ms=7000),
                     _vh(EnvoyRoute("d", (JASON_MATCH,), "/", (Target("x"),),
                                    Fault(delay_ms=7000, delay_percent=100)), service="ratings"),
                     True, id="delay-7s"),
        pytest.param(FaultRoute("ratings", JASON, delay_ms=7000),
                     _vh(EnvoyRoute("d", (JASON_MATCH,), "/", (Target("x"),),
                                    Fault(delay_ms=7000, delay_percent=50)), service="ratings"),
                     False, id="delay-at-half"),
        pytest.param(FaultRoute("ratings", JASON, abort_status=500),
                     _vh(EnvoyRoute("a", (JASON_MATCH,), "/", (Target("x"),),
                                    Fault(abort_status=500, abort_percent=100)), service="ratings"),
                     True, id="abort-500"),
        pytest.param(FaultRoute("ratings", JASON, abort_status=500),
                     _vh(EnvoyRoute("a", (JASON_MATCH,), "/", (Target("x"),)), service="ratings"),
                     False, id="route-without-fault"),
        pytest.param(Weights("reviews", ((subset("v1"), 50), (subset("v3"), 50))),
                     _vh(EnvoyRoute("w", (), "/", (Target(_cluster("v3"), 50),
                                                   Target(_cluster("v1"), 50)))),
                     True, id="canary-50-50"),
        pytest.param(Weights("reviews", ((subset("v3"), 100),)),
                     _vh(EnvoyRoute("w", (), "/", (Target(_cluster("v3"), 50),
                                                   Target(_cluster("v1"), 50)))),
                     False, id="canary-still-at-50"),
    ],
)  # fmt: skip
def test_routes(
    expect: HeaderRoute | FaultRoute | Weights, hosts: tuple[VirtualHost, ...] | None, holds: bool
) -> None:
    ok, seen = check_routes(expect, hosts)
    assert ok is holds, seen
    assert seen


def _view(*addresses: str) -> ClusterView:
    endpoints = tuple(
        EndpointView(a, 15443, 1, "region-a/zone-a", 0, 1, "HEALTHY", {}) for a in addresses
    )
    return ClusterView("outbound|9080||x", "EDS", TlsView("AUTO", "", ()), None, endpoints)


@pytest.mark.parametrize(
    ("expect", "view", "holds", "via"),
    [
        pytest.param(Drained("ratings", "c2"), _view("127.0.3.1"), True, "c3", id="drained"),
        pytest.param(Drained("ratings", "c2"), _view("127.0.2.1", "127.0.3.1"), False, "c2,c3",
                     id="still-via-c2"),
        pytest.param(Drained("ratings", "c2"), _view(), False, "-",
                     id="no-endpoint-is-no-failover"),
        pytest.param(Exported("ratings"), _view("10.0.0.7"), True, "local", id="local-pod"),
        pytest.param(Exported("ratings"), None, False, "", id="not-served"),
        pytest.param(Exported("ratings", via=("c2", "c3")), _view("127.0.2.1"), False, "c2",
                     id="one-gateway-of-two"),
        pytest.param(Exported("ratings", via=("c2", "c3")), _view("127.0.2.1", "127.0.3.1"), True,
                     "c2,c3", id="both-gateways"),
    ],
)  # fmt: skip
def test_endpoints(
    expect: Drained | Exported, view: ClusterView | None, holds: bool, via: str
) -> None:
    ok, seen = check_endpoints(expect, view, GATEWAYS)
    assert ok is holds
    assert via in seen


def _deployment(name: str, account: str) -> dict[str, Any]:
    pod = {"spec": {"serviceAccountName": account}}
    return {
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"replicas": 1, "template": pod},
    }


NAMES = ("productpage", "details", "reviews", "ratings")
SAMPLE = [
    *({"kind": "Service", "metadata": {"name": s}} for s in NAMES),
    *({"kind": "ServiceAccount", "metadata": {"name": f"bookinfo-{s}"}} for s in NAMES),
    _deployment("productpage-v1", "bookinfo-productpage"),
    _deployment("details-v1", "bookinfo-details"),
    _deployment("ratings-v1", "bookinfo-ratings"),
    *(_deployment(f"reviews-v{i}", "bookinfo-reviews") for i in (1, 2, 3)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("cluster", "pods"),
    [
        pytest.param("c1", {"productpage": 1, "details": 1, "reviews": 2}, id="c1"),
        pytest.param("c2", {"reviews": 1, "ratings": 1}, id="c2"),
        pytest.param("c3", {"ratings": 1}, id="c3"),
    ],
)
def test_bookinfo_split(cluster: str, pods: dict[str, int]) -> None:
    docs = bookinfo.for_cluster(cluster, SAMPLE)
    assert bookinfo.pods_expected(cluster, SAMPLE) == pods
    exports = {d["metadata"]["name"] for d in docs if d["kind"] == "ServiceExport"}
    services = {d["metadata"]["name"] for d in docs if d["kind"] == "Service"}
    assert exports == services == set(pods)
    assert all(d["metadata"]["namespace"] == "default" for d in docs)


def test_bookinfo_names_a_missing_deployment() -> None:
    with pytest.raises(bookinfo.BookinfoError, match="reviews-v3"):
        bookinfo.for_cluster("c2", [d for d in SAMPLE if d["metadata"]["name"] != "reviews-v3"])


def test_bookinfo_says_to_run_setup(tmp_path: Path) -> None:
    with pytest.raises(bookinfo.BookinfoError, match="make setup"):
        bookinfo.load(tmp_path)


def test_signal_window_and_verdict() -> None:
    s = Signal("sum(increase(x[{window}]))")
    assert s.query(7) == "sum(increase(x[7s]))"
    assert s.query(0) == "sum(increase(x[2s]))", "a window of at least two flushes"
    rows = [Row("a", "e", ok=True), Row("b", "e")]
    assert verdict(rows) == (1, 2)
    assert rows[1].latency_text() == "-"


def test_state_round_trip_and_ports(tmp_path: Path) -> None:
    st = state.DemoState(base_port=13500)
    assert st.ports.all() == tuple(range(13550, 13558))
    state.save(tmp_path, st)
    loaded = state.load(tmp_path)
    assert loaded is not None and loaded.base_port == 13500
    assert state.load(tmp_path / "none") is None


def test_table_prints_every_column_and_no_emoji() -> None:
    from rich.console import Console  # noqa: PLC0415 - only this test renders

    from meshfed.demo.cli import table  # noqa: PLC0415

    rows = [Row("canary v3:100", "RDS reviews: weights version-v3:100", "weights version-v3:100",
                ok=True, latency_s=0.31, where="http://127.0.0.1:1/#/drills")]  # fmt: skip
    out = Console(width=200, emoji=False, record=True)
    out.print(table(rows))
    text = out.export_text()
    for part in ("canary v3:100", "weights version-v3:100", "0.31s", "#/drills", "propagation"):
        assert part in text

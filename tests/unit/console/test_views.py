"""The console's pure shaping: health words, the service x cluster matrix, links, PromQL,
self-metrics, the trace waterfall and settings validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from federator.api._generated.meshfed.v1 import federation_pb2 as pb
from meshfed.console import telemetry, views
from meshfed.console.settings import ConsoleSettings, ConsoleSettingsError, GrpcTarget, StoreTarget

pytestmark = pytest.mark.unit

UP, DOWN = pb.GatewayHealth.STATE_UP, pb.GatewayHealth.STATE_DOWN


def cluster(
    name: str,
    *,
    reachable: bool = True,
    synced: bool = True,
    stale: bool = False,
    gateway: int = UP,
) -> pb.ClusterStatus:
    return pb.ClusterStatus(
        name=name,
        reachable=reachable,
        synced=synced,
        stale=stale,
        gateway=pb.GatewayHealth(state=gateway),
    )


@pytest.mark.parametrize(
    ("status", "word"),
    [
        pytest.param(cluster("a"), "healthy", id="healthy"),
        pytest.param(cluster("a", reachable=False, stale=True), "stale", id="stale"),
        pytest.param(cluster("a", reachable=False), "unreachable", id="unreachable"),
        pytest.param(cluster("a", synced=False), "syncing", id="syncing"),
        pytest.param(cluster("a", gateway=DOWN), "degraded", id="gateway-down"),
    ],
)
def test_cluster_health(status: pb.ClusterStatus, word: str) -> None:
    assert views.cluster_health(status) == word


def test_overview_groups_by_region_and_colours_links_by_their_worse_end() -> None:
    status = pb.GetStatusResponse(
        clusters=[cluster("c1"), cluster("c2"), cluster("c3", gateway=DOWN)]
    )
    o = views.overview_json(status, {"c1": "r1", "c2": "r1", "c3": "r2"}, "gateway")
    assert o["regions"] == [
        {"name": "r1", "clusters": ["c1", "c2"]},
        {"name": "r2", "clusters": ["c3"]},
    ]
    states = {(link["a"], link["b"]): link["state"] for link in o["links"]}
    assert states == {("c1", "c2"): "up", ("c1", "c3"): "down", ("c2", "c3"): "down"}


def test_matrix_cells_local_remote_and_weight() -> None:
    service = pb.ServiceStatus(
        key=pb.ServiceKey(namespace="ns", name="reviews"),
        exporters=[
            pb.Exporter(cluster="c1", ready_endpoints=3, total_endpoints=4),
            pb.Exporter(
                cluster="c2",
                ready_endpoints=1,
                total_endpoints=1,
                freshness=pb.ENDPOINTS_FRESHNESS_STALE,
            ),
        ],
        conflicts=[pb.Conflict(message="port 80 differs")],
    )
    row = views.service_row(service, ["c1", "c2", "c3"])
    c1, c2, c3 = row["cells"]["c1"], row["cells"]["c2"], row["cells"]["c3"]
    assert (c1["local_ready"], c1["local_total"], c1["remote_ready"], c1["weight"]) == (
        3,
        4,
        1,
        0.75,
    )
    assert (c2["weight"], c2["stale"], c2["remote_ready"]) == (0.25, True, 3)
    assert (c3["exported"], c3["remote_ready"], c3["weight"], c3["applied"]) == (
        False,
        4,
        0.0,
        None,
    )
    assert row["conflicts"][0]["message"] == "port 80 differs"


def test_no_ready_endpoints_gives_zero_weight_not_a_division_error() -> None:
    service = pb.ServiceStatus(exporters=[pb.Exporter(cluster="c1", total_endpoints=2)])
    assert views.service_row(service, ["c1"])["cells"]["c1"]["weight"] == 0.0


def test_golden_queries_quote_labels_and_group_by_cluster() -> None:
    q = telemetry.golden_queries('we"ird', "ns")
    assert 'destination_service_name="we\\"ird"' in q["rate"]
    assert q["rate"].startswith("sum by (cluster) (rate(istio_requests_total{")
    assert q["p99"].startswith("histogram_quantile(0.99, sum by (cluster, le)")


def test_matrix_series_drops_nan_and_sorts_by_cluster() -> None:
    body: dict[str, Any] = {
        "data": {
            "result": [
                {"metric": {"cluster": "c2"}, "values": [[1, "NaN"], [2, "3"]]},
                {"metric": {"cluster": "c1"}, "values": [[1, "+Inf"], [2, "1.5"]]},
            ]
        }
    }
    assert telemetry.matrix_series(body) == [
        {"cluster": "c1", "points": [[2.0, 1.5]]},
        {"cluster": "c2", "points": [[2.0, 3.0]]},
    ]


METRICS = """\
# TYPE meshfed_receiver_received_total counter
meshfed_receiver_received_total{receiver="otlp_http",signal="spans"} 100.0
meshfed_receiver_received_total{receiver="otlp_http",signal="logs"} 50.0
# TYPE meshfed_receiver_stored_total counter
meshfed_receiver_stored_total{receiver="otlp_http",signal="spans"} 90.0
# TYPE meshfed_receiver_rejected_total counter
meshfed_receiver_rejected_total{receiver="otlp_http",reason="too_large"} 4.0
# TYPE meshfed_receiver_dropped_total counter
meshfed_receiver_dropped_total{receiver="statsd",reason="queue_full"} 2.0
# TYPE meshfed_receiver_queue_depth gauge
meshfed_receiver_queue_depth{receiver="pipeline"} 7.0
"""


def test_receiver_counters_and_rates() -> None:
    after = telemetry.receiver_counters(METRICS)
    assert after["otlp_http"]["received"] == 150.0
    assert after["otlp_http"]["rejected"] == {"too_large": 4.0}
    assert after["statsd"]["dropped"] == {"queue_full": 2.0}
    assert after["pipeline"]["queue"] == 7.0
    before = {"otlp_http": {"received": 50.0, "stored": 90.0}}
    rates = telemetry.ingest_rates(before, after, 2.0)
    assert rates["otlp_http"]["received_per_s"] == 50.0
    assert rates["otlp_http"]["stored_per_s"] == 0.0
    assert rates["statsd"]["received_per_s"] == 0.0


def _span(span_id: str, parent: str, start: int, end: int, status: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {
        "spanId": span_id,
        "name": span_id,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(end),
        "status": {},
    }
    if parent:
        out["parentSpanId"] = parent
    if status:
        out["status"] = {"code": status}
    return out


def test_waterfall_orders_children_under_parents_with_offsets() -> None:
    body = {
        "batches": [
            {
                "resource": {
                    "attributes": [
                        {"key": "service.name", "value": {"stringValue": "a"}},
                        {"key": "cluster", "value": {"stringValue": "c1"}},
                    ]
                },
                "scopeSpans": [
                    {
                        "spans": [
                            _span("child", "root", 2_000_000, 3_000_000, "STATUS_CODE_ERROR"),
                            _span("root", "", 1_000_000, 5_000_000),
                            _span("orphan", "missing", 4_000_000, 4_500_000),
                        ]
                    }
                ],
            }
        ],
        "logs": [{"body": "x"}],
    }
    w = telemetry.waterfall(body)
    assert [(s["id"], s["depth"]) for s in w["spans"]] == [("root", 0), ("child", 1), ("orphan", 0)]
    assert w["spans"][1]["offset_ms"] == 1.0 and w["spans"][1]["status"] == "error"
    assert w["duration_ms"] == 4.0 and w["logs"] == [{"body": "x"}]
    assert w["spans"][0]["cluster"] == "c1"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        pytest.param(ConsoleSettings(port=70000), "--port", id="port"),
        pytest.param(
            ConsoleSettings(federator=GrpcTarget(address="nohost")),
            "host:port",
            id="federator-address",
        ),
        pytest.param(
            ConsoleSettings(store=StoreTarget(url="redis://x")), "--store", id="store-url"
        ),
        pytest.param(
            ConsoleSettings(federator=GrpcTarget(cert=Path("/c"))),
            "go together",
            id="cert-without-key",
        ),
        pytest.param(
            ConsoleSettings(store=StoreTarget(token_file=Path("/nonexistent/t"))),
            "--store-token-file",
            id="missing-token-file",
        ),
    ],
)
def test_settings_errors_name_the_flag(settings: ConsoleSettings, message: str) -> None:
    with pytest.raises(ConsoleSettingsError, match=message):
        settings.validate()


def test_search_tags_from_the_form() -> None:
    assert telemetry.search_tags("c1", "error", "http.method=GET") == (
        'http.method=GET cluster="c1" status.code=error'
    )
    assert telemetry.search_tags("", "", "") == ""

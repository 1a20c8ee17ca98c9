"""Envoy messages as istiod builds them -> the views ``meshfed mesh inspect`` prints.

The messages are built here in the shapes istiod 1.31 sends (recorded from a sandbox istiod):
Istio mTLS as SDS ``default`` + ``ROOTCA``, auto-mTLS as a ``tlsMode-istio`` socket match.
"""

from __future__ import annotations

import pytest
from envoy.config.cluster.v3.cluster_pb2 import Cluster  # type: ignore[import-untyped]
from envoy.config.endpoint.v3.endpoint_pb2 import ClusterLoadAssignment  # type: ignore[import-untyped]
from envoy.extensions.transport_sockets.tls.v3.tls_pb2 import UpstreamTlsContext  # type: ignore[import-untyped]

from meshfed.mesh.views import cluster_view, describe, matching

NAME = "outbound|9080||reviews.default.svc.clusterset.local"


def _istio_tls(sni: str) -> UpstreamTlsContext:
    ctx = UpstreamTlsContext(sni=sni)
    common = ctx.common_tls_context
    common.alpn_protocols.append("istio")
    common.tls_certificate_sds_secret_configs.add(name="default")
    common.combined_validation_context.validation_context_sds_secret_config.name = "ROOTCA"
    return ctx


def _cluster(tls: str) -> Cluster:
    c = Cluster(name=NAME, type=Cluster.EDS)
    if tls == "istio-mutual":
        c.transport_socket.name = "envoy.transport_sockets.tls"
        c.transport_socket.typed_config.Pack(_istio_tls("outbound_.9080_._.reviews"))
    elif tls == "auto":
        m = c.transport_socket_matches.add(name="tlsMode-istio")
        m.transport_socket.typed_config.Pack(_istio_tls("outbound_.9080_._.reviews"))
    c.outlier_detection.consecutive_5xx.value = 5
    c.outlier_detection.interval.seconds = 10
    c.outlier_detection.base_ejection_time.seconds = 30
    c.outlier_detection.max_ejection_percent.value = 100
    return c


def _cla() -> ClusterLoadAssignment:
    cla = ClusterLoadAssignment(cluster_name=NAME)
    for region, zone, priority, address, port, weight in (
        ("region-a", "region-a-1", 1, "127.0.1.1", 15443, 2),
        ("region-b", "region-b-1", 0, "10.3.0.2", 9080, None),
    ):
        group = cla.endpoints.add(priority=priority)
        group.locality.region, group.locality.zone = region, zone
        lb = group.lb_endpoints.add()
        lb.endpoint.address.socket_address.address = address
        lb.endpoint.address.socket_address.port_value = port
        if weight is not None:
            lb.load_balancing_weight.value = weight
        lb.metadata.filter_metadata["istio"].update({"workload": "meshfed-reviews-0;default"})
    return cla


@pytest.mark.parametrize(
    ("tls", "mode"),
    [
        pytest.param("istio-mutual", "ISTIO_MUTUAL", id="destinationrule-istio-mutual"),
        pytest.param("auto", "AUTO", id="auto-mtls-socket-match"),
        pytest.param("none", "NONE", id="plaintext"),
    ],
)
def test_tls_mode(tls: str, mode: str) -> None:
    view = cluster_view(_cluster(tls), None)
    assert view.tls.mode == mode
    assert view.tls.sni == ("" if tls == "none" else "outbound_.9080_._.reviews")


def test_endpoints_sorted_by_priority_with_weight_locality_metadata() -> None:
    view = cluster_view(_cluster("istio-mutual"), _cla())
    assert [(e.address, e.port, e.weight, e.locality, e.priority) for e in view.endpoints] == [
        ("10.3.0.2", 9080, 1, "region-b/region-b-1", 0),
        ("127.0.1.1", 15443, 2, "region-a/region-a-1", 1),
    ]
    assert view.endpoints[0].metadata == {"workload": "meshfed-reviews-0;default"}
    assert view.host == "reviews.default.svc.clusterset.local"


def test_outlier_detection_and_summary_lines() -> None:
    view = cluster_view(_cluster("istio-mutual"), _cla())
    assert view.outlier is not None and view.outlier.interval_s == 10
    lines = describe(view)
    assert "outlier: 5 consecutive 5xx, every 10s, eject 30s, max 100%" in lines[0]
    assert (
        lines[2] == "  127.0.1.1:15443  weight 2  locality region-a/region-a-1  priority 1  UNKNOWN"
    )


@pytest.mark.parametrize(
    ("service", "hits"),
    [
        pytest.param("reviews.default", ["cs", "local"], id="name-namespace-matches-both-hosts"),
        pytest.param("reviews.default.svc.clusterset.local", ["cs"], id="full-host-exact"),
        pytest.param("reviews.other", [], id="other-namespace"),
        pytest.param("review.default", [], id="no-prefix-match"),
    ],
)
def test_matching(service: str, hits: list[str]) -> None:
    names = {
        "cs": "outbound|9080||reviews.default.svc.clusterset.local",
        "local": "outbound|9080||reviews.default.svc.cluster.local",
        "inbound": "inbound|9080||",
        "blackhole": "BlackHoleCluster",
    }
    assert matching(names.values(), service) == sorted(names[h] for h in hits)

"""The Envoy API messages meshfed reads, from the ``xds-protos`` package, in one place.

``xds-protos`` ships generated code without type information, so every import of it would
need the same mypy exemption; here it is made once and the rest of the package imports the
names from this module (they are ``Any`` to mypy).
"""

from __future__ import annotations

from envoy.config.cluster.v3.cluster_pb2 import Cluster  # type: ignore[import-untyped]
from envoy.config.core.v3.base_pb2 import Locality, Node, TransportSocket  # type: ignore[import-untyped]
from envoy.config.core.v3.health_check_pb2 import HealthStatus  # type: ignore[import-untyped]
from envoy.config.endpoint.v3.endpoint_pb2 import ClusterLoadAssignment  # type: ignore[import-untyped]
from envoy.config.listener.v3.listener_pb2 import Listener  # type: ignore[import-untyped]
from envoy.config.route.v3.route_pb2 import RouteConfiguration  # type: ignore[import-untyped]
from envoy.extensions.filters.network.http_connection_manager.v3 import (  # type: ignore[import-untyped]
    http_connection_manager_pb2 as _hcm,
)
from envoy.extensions.transport_sockets.tls.v3.tls_pb2 import UpstreamTlsContext  # type: ignore[import-untyped]
from envoy.service.discovery.v3.ads_pb2_grpc import AggregatedDiscoveryServiceStub  # type: ignore[import-untyped]
from envoy.service.discovery.v3.discovery_pb2 import (  # type: ignore[import-untyped]
    DiscoveryRequest,
    DiscoveryResponse,
)

HttpConnectionManager = _hcm.HttpConnectionManager

__all__ = [
    "AggregatedDiscoveryServiceStub",
    "Cluster",
    "ClusterLoadAssignment",
    "DiscoveryRequest",
    "DiscoveryResponse",
    "HealthStatus",
    "HttpConnectionManager",
    "Listener",
    "Locality",
    "Node",
    "RouteConfiguration",
    "TransportSocket",
    "UpstreamTlsContext",
]

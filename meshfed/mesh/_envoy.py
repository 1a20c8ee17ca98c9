"""The Envoy API messages meshfed reads, from the ``xds-protos`` package, in one place.

``xds-protos`` ships generated code without type information, so every import of it would
need the same mypy exemption; here it is made once and the rest of the package imports the
names from this module (they are ``Any`` to mypy).

``xds-protos`` is the optional ``mesh`` extra (see the package docstring): without it this
module raises :class:`~meshfed.mesh.MeshExtraMissingError` naming the install command.
"""

from __future__ import annotations

from meshfed.mesh import MESH_EXTRA_FIX, MeshExtraMissingError

try:
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
except ImportError as err:  # only the extra's absence: a broken install is reported as such
    if err.name is None or not err.name.startswith("envoy"):
        raise
    raise MeshExtraMissingError(
        f"the Envoy API (the xds-protos package) is not installed; `meshfed mesh` and the "
        f"xDS client need it: {MESH_EXTRA_FIX}",
        name=err.name,
    ) from err

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

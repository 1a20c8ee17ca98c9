"""The read model's packed endpoints read back exactly what was stored. No sockets."""

from __future__ import annotations

import pytest

from federator.core.model import ClusterId, Endpoint
from federator.status import PackedEndpoints

C1, C2 = ClusterId("c1"), ClusterId("c2")


@pytest.mark.parametrize(
    "endpoints",
    [
        pytest.param({}, id="no-exporter"),
        pytest.param({C1: ()}, id="exporter-without-endpoints"),
        pytest.param(
            {
                C1: (
                    Endpoint.of("10.1.0.1", {"http": 9080, "grpc": 9090}, zone="region-a-1"),
                    Endpoint.of("10.1.0.2", {"http": 9080}, ready=False),
                ),
                C2: (
                    Endpoint.of("fd00::2", {"": 80}, labels={"version": "v2", "app": "r"}),
                    Endpoint.of("10.2.0.1", {}, zone="z", labels={"version": "v1"}),
                ),
            },
            id="ports-zones-labels-readiness-ipv6",
        ),
    ],
)
def test_packed_endpoints_read_back_what_was_stored(
    endpoints: dict[ClusterId, tuple[Endpoint, ...]],
) -> None:
    packed = PackedEndpoints(endpoints)
    assert dict(packed) == endpoints
    assert packed == endpoints and len(packed) == len(endpoints)
    assert {c: packed[c] for c in packed} == endpoints
    assert packed.get(ClusterId("absent")) is None

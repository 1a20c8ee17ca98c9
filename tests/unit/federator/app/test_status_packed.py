"""The read model's packed values read back exactly what was stored. No sockets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from federator.core.model import ClusterId, Endpoint
from federator.status_packed import PackedEndpoints, TargetSeconds, TargetTimes

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


NOW = datetime(2026, 12, 5, 9, 58, 1, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    "times",
    [
        pytest.param({}, id="none"),
        pytest.param({C1: NOW}, id="one"),
        pytest.param(
            {C2: NOW, C1: NOW - timedelta(days=400, microseconds=1)},
            id="microseconds-exact-any-order",
        ),
        pytest.param({C1: datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC)}, id="before-epoch"),
    ],
)
def test_target_times_read_back_exactly(times: dict[ClusterId, datetime]) -> None:
    packed = TargetTimes(times)
    assert dict(packed) == times and list(packed) == list(times)
    assert packed.get(ClusterId("absent")) is None


@pytest.mark.parametrize(
    "seconds",
    [
        pytest.param({}, id="none"),
        pytest.param({C1: 0.375, C2: 1.5}, id="two"),
        pytest.param({C2: 1e-9, C1: 86400.25}, id="tiny-and-large"),
    ],
)
def test_target_seconds_read_back_exactly(seconds: dict[ClusterId, float]) -> None:
    packed = TargetSeconds(seconds)
    assert dict(packed) == seconds and list(packed) == list(seconds)
    assert packed.get(ClusterId("absent")) is None


def test_services_naming_the_same_clusters_share_one_tuple() -> None:
    first, second = TargetSeconds({C1: 1.0, C2: 2.0}), TargetSeconds({C1: 3.0, C2: 4.0})
    assert first._clusters is second._clusters

"""Compact values of the status read model (``federator.status``).

Why: the read model keeps, per global service, every endpoint of every exporting cluster
and, per target cluster, when meshfed last wrote there and how long that change took to
propagate: 3,000 services x 10 clusters at Istio's published shape. As dicts of ``Endpoint``
objects, ``datetime`` and ``float`` objects that was ~12 MiB of the federator's memory, and
every reconcile re-creates its service's values, so they were also the long-lived objects
scattered through the allocator's pools (what keeps them resident after a start-up peak).
Packed, a service holds a few objects; a read (a status request, ``meshfed status``)
rebuilds the values of the services it returns.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, TypeVar, cast

from federator.core.model import ClusterId, Endpoint

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class PackedEndpoints(Mapping[ClusterId, tuple[Endpoint, ...]]):
    """Endpoints per exporting cluster, held as compact JSON and rebuilt when read.

    Why: the read model keeps every endpoint of every global service for the status API
    (40,000 at Istio's published shape). As ``Endpoint`` objects with their tuples and
    strings that was ~6 MiB of the federator's memory; packed it is ~2 MiB. A read (a
    status request, ``meshfed status``) decodes one service at a time."""

    __slots__ = ("_packed",)

    def __init__(self, endpoints: Mapping[ClusterId, tuple[Endpoint, ...]]) -> None:
        self._packed: dict[ClusterId, bytes] = {
            cluster: _pack(eps) for cluster, eps in endpoints.items()
        }

    def __getitem__(self, cluster: ClusterId) -> tuple[Endpoint, ...]:
        return _unpack(self._packed[cluster])

    def __iter__(self) -> Iterator[ClusterId]:
        return iter(self._packed)

    def __len__(self) -> int:
        return len(self._packed)

    def __repr__(self) -> str:
        return f"PackedEndpoints({dict(self.items())!r})"


def _pack(endpoints: tuple[Endpoint, ...]) -> bytes:
    return json.dumps(
        [[e.address, e.ports, e.ready, e.zone, e.labels] for e in endpoints],
        separators=(",", ":"),
    ).encode()


def _unpack(packed: bytes) -> tuple[Endpoint, ...]:
    return tuple(
        Endpoint(
            address=address,
            ports=tuple((str(name), int(port)) for name, port in ports),
            ready=ready,
            zone=zone,
            labels=tuple((str(k), str(v)) for k, v in labels),
        )
        for address, ports, ready, zone, labels in json.loads(packed)
    )


@lru_cache(maxsize=1024)
def _shared(clusters: tuple[ClusterId, ...]) -> tuple[ClusterId, ...]:
    """One tuple per distinct set of clusters (every service names the same few sets)."""
    return clusters


V = TypeVar("V")


class _ByCluster(Mapping[ClusterId, V]):
    """Per cluster a value, held in one typed array beside the shared tuple of clusters."""

    __slots__ = ("_clusters", "_values")
    _typecode = "d"

    def __init__(self, values: Mapping[ClusterId, V]) -> None:
        self._clusters = _shared(tuple(values))
        self._values: array[Any] = array(self._typecode, map(self._pack, values.values()))

    def _pack(self, value: V) -> Any:
        return value

    def _unpack(self, raw: Any) -> V:
        return cast("V", raw)

    def __getitem__(self, cluster: ClusterId) -> V:
        try:
            return self._unpack(self._values[self._clusters.index(cluster)])
        except ValueError:
            raise KeyError(cluster) from None

    def __iter__(self) -> Iterator[ClusterId]:
        return iter(self._clusters)

    def __len__(self) -> int:
        return len(self._clusters)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict(self.items())!r})"


class TargetTimes(_ByCluster[datetime]):
    """Per cluster a UTC time, held as integer microseconds since the epoch (exact)."""

    __slots__ = ()
    _typecode = "q"

    def _pack(self, value: datetime) -> int:
        return (value - _EPOCH) // _MICROSECOND

    def _unpack(self, raw: int) -> datetime:
        return _EPOCH + raw * _MICROSECOND


class TargetSeconds(_ByCluster[float]):
    """Per cluster a number of seconds, held in a float64 array."""

    __slots__ = ()

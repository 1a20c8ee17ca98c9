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


class TargetTimes(Mapping[ClusterId, datetime]):
    """Per cluster a UTC time, held as integer microseconds since the epoch (exact)."""

    __slots__ = ("_clusters", "_micros")

    def __init__(self, times: Mapping[ClusterId, datetime]) -> None:
        self._clusters = _shared(tuple(times))
        self._micros = array("q", ((t - _EPOCH) // _MICROSECOND for t in times.values()))

    def __getitem__(self, cluster: ClusterId) -> datetime:
        try:
            return _EPOCH + self._micros[self._clusters.index(cluster)] * _MICROSECOND
        except ValueError:
            raise KeyError(cluster) from None

    def __iter__(self) -> Iterator[ClusterId]:
        return iter(self._clusters)

    def __len__(self) -> int:
        return len(self._clusters)

    def __repr__(self) -> str:
        return f"TargetTimes({dict(self.items())!r})"


class TargetSeconds(Mapping[ClusterId, float]):
    """Per cluster a number of seconds, held in a float64 array."""

    __slots__ = ("_clusters", "_seconds")

    def __init__(self, seconds: Mapping[ClusterId, float]) -> None:
        self._clusters = _shared(tuple(seconds))
        self._seconds = array("d", seconds.values())

    def __getitem__(self, cluster: ClusterId) -> float:
        try:
            return self._seconds[self._clusters.index(cluster)]
        except ValueError:
            raise KeyError(cluster) from None

    def __iter__(self) -> Iterator[ClusterId]:
        return iter(self._clusters)

    def __len__(self) -> int:
        return len(self._clusters)

    def __repr__(self) -> str:
        return f"TargetSeconds({dict(self.items())!r})"

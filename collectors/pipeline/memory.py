"""Memory limiter: refuse work (retryably) instead of growing until the OOM killer comes.

Two bounds, both cheap enough to check for every batch:

* **process RSS** (read from ``/proc/self/statm``, cached for ``check_interval_s``): above
  ``limit_mib - spike_mib`` new batches are refused; above ``limit_mib`` a garbage
  collection is forced as well (the OpenTelemetry Collector's memory_limiter semantics);
* **bytes in flight**: receivers reserve what a request will cost (body, decompressed size)
  before allocating it, and release it when the request is answered.

Refusals raise :class:`MemoryLimitError`, a ``RetryableError``: 429 / RESOURCE_EXHAUSTED /
no Forward ack, so senders back off and retry instead of losing data.
"""

from __future__ import annotations

import contextlib
import gc
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from collectors._core.errors import ConfigError, MemoryLimitError

MIB = 1024 * 1024
_STATM = Path("/proc/self/statm")


@dataclass(frozen=True, slots=True)
class MemorySettings:
    """Memory bounds of the whole process."""

    limit_mib: int = 0
    """Hard limit on process RSS in MiB; 0 disables the RSS check."""
    spike_mib: int = 0
    """Headroom below ``limit_mib`` where refusing starts; 0 means 20 % of ``limit_mib``."""
    max_in_flight_mib: int = 256
    """Bytes that requests being processed may reserve together (bodies, decompressed
    payloads); 0 disables the check."""
    check_interval_s: float = 0.05
    """RSS is read at most this often (reading it costs a file read)."""

    @property
    def soft_limit_bytes(self) -> int:
        spike = self.spike_mib if self.spike_mib else self.limit_mib // 5
        return (self.limit_mib - spike) * MIB

    def validate(self) -> None:
        if self.limit_mib < 0:
            raise ConfigError("pipeline.memory.limit_mib must be >= 0 (0 disables it)")
        if self.limit_mib and self.limit_mib < 64:
            raise ConfigError(
                "pipeline.memory.limit_mib must be >= 64 (a Python collector idles near 60 MiB)"
            )
        if self.spike_mib < 0 or (self.limit_mib and self.spike_mib >= self.limit_mib):
            raise ConfigError("pipeline.memory.spike_mib must be in 0..limit_mib-1")
        if self.max_in_flight_mib < 0:
            raise ConfigError("pipeline.memory.max_in_flight_mib must be >= 0 (0 disables it)")
        if self.check_interval_s <= 0:
            raise ConfigError("pipeline.memory.check_interval_s must be > 0")


def read_rss_bytes() -> int:
    """Resident set size of this process (Linux ``/proc``; 0 where unavailable)."""
    try:
        fields = _STATM.read_bytes().split()
    except OSError:
        return 0
    return int(fields[1]) * os.sysconf("SC_PAGE_SIZE")


class MemoryLimiter:
    """Checks RSS and accounts bytes in flight; one per process, shared by every receiver."""

    def __init__(
        self,
        *,
        settings: MemorySettings,
        read_rss: Callable[[], int] = read_rss_bytes,
        clock: Callable[[], float] = time.monotonic,
        collect_garbage: Callable[[], object] = gc.collect,
    ) -> None:
        settings.validate()
        self._settings = settings
        self._read_rss = read_rss
        self._clock = clock
        self._collect_garbage = collect_garbage
        self._rss = 0
        self._rss_at = float("-inf")
        self._in_flight = 0
        self.refusals = 0
        """Batches and reservations refused so far."""

    @property
    def in_flight_bytes(self) -> int:
        return self._in_flight

    def rss_bytes(self) -> int:
        """The last RSS reading, refreshed when older than ``check_interval_s``."""
        now = self._clock()
        if now - self._rss_at >= self._settings.check_interval_s:
            self._rss = self._read_rss()
            self._rss_at = now
            if self._settings.limit_mib and self._rss > self._settings.limit_mib * MIB:
                self._collect_garbage()
                self._rss = self._read_rss()
        return self._rss

    def check(self) -> None:
        """Raise ``MemoryLimitError`` when RSS is above the soft limit."""
        if not self._settings.limit_mib:
            return
        rss = self.rss_bytes()
        if rss > self._settings.soft_limit_bytes:
            self.refusals += 1
            raise MemoryLimitError(
                f"memory limit: RSS {rss // MIB} MiB is above"
                f" {self._settings.soft_limit_bytes // MIB} MiB; retry later"
            )

    @contextlib.contextmanager
    def reserve(self, nbytes: int) -> Iterator[None]:
        """Hold ``nbytes`` of the in-flight budget for the block (refuse if it does not fit).

        A single reservation larger than the whole budget is still refused, so a caller must
        bound its requests by the budget (the config validation checks that).
        """
        budget = self._settings.max_in_flight_mib * MIB
        if budget and self._in_flight + nbytes > budget:
            self.refusals += 1
            raise MemoryLimitError(
                f"memory limit: {self._in_flight // MIB} MiB of requests in flight, the budget"
                f" is {self._settings.max_in_flight_mib} MiB; retry later"
            )
        self.check()
        self._in_flight += nbytes
        try:
            yield
        finally:
            self._in_flight -= nbytes

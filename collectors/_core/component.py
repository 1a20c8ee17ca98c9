"""The two contracts every collector part shares: a lifecycle, and where records go.

A receiver (socket/HTTP/gRPC server) parses wire bytes into :mod:`collectors._core.model` records
and hands them to a :class:`TelemetrySink`. The sink returns only after the store has the
records durably (or raises :class:`collectors._core.errors.RetryableError`), so a receiver
acknowledges its sender only after that call returned — never earlier.

In production the sink is :class:`collectors.pipeline.Pipeline` (adds resource labels,
enforces the memory limit, coalesces concurrent writes into larger store batches); a
:class:`collectors.store.store.TelemetryStore` satisfies the same protocol, which is what
receiver tests use when they do not need the pipeline.

A :class:`SeriesSink` also takes columnar :class:`collectors._core.series_batch.SeriesBatch` es
(``write_series``): receivers of many samples per series (remote_write) use it to avoid an
object per sample. The pipeline and the store are both; plain ``TelemetrySink`` s need not be.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from collectors._core.model import LogRecord, MetricMetadata, Sample, Span
from collectors._core.series_batch import SeriesBatch


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What one ``write_samples`` call stored and refused (counts, never log lines)."""

    accepted: int = 0
    """Samples appended."""
    duplicates_ignored: int = 0
    """Same timestamp and same value bits as the series' last sample: a no-op (Prometheus)."""
    out_of_order: int = 0
    """Older than the series' newest sample: refused (Prometheus ``out of order sample``)."""
    duplicate_conflicts: int = 0
    """Same timestamp, different value: refused (Prometheus ``duplicate sample for timestamp``)."""
    over_limit: int = 0
    """Samples of new series refused by the series caps."""
    series_created: int = 0
    series_refused: int = 0

    @property
    def rejected(self) -> int:
        return self.out_of_order + self.duplicate_conflicts + self.over_limit

    def __add__(self, other: WriteResult) -> WriteResult:
        return WriteResult(
            *(getattr(self, f) + getattr(other, f) for f in self.__dataclass_fields__)
        )


class Component(Protocol):
    """Every long-lived part: ``start`` returns once it serves; ``shutdown`` is idempotent,
    stops accepting, drains what was accepted, then returns (tasks it owns end with
    :func:`collectors._kits.tasks.cancel_and_wait`)."""

    async def start(self) -> None: ...

    async def shutdown(self) -> None: ...


class TelemetrySink(Protocol):
    """Durable destination for records; every call is a batch and returns after the write.

    Raises :class:`collectors._core.errors.RetryableError` (store down, memory limit reached:
    the sender should retry) or :class:`collectors._core.errors.PermanentError` (bad records).
    """

    async def write_samples(self, samples: Sequence[Sample]) -> WriteResult: ...

    async def write_metadata(self, metadata: Sequence[MetricMetadata]) -> None: ...

    async def write_spans(self, spans: Sequence[Span]) -> None: ...

    async def write_logs(self, records: Sequence[LogRecord]) -> None: ...


class SeriesSink(TelemetrySink, Protocol):
    """A ``TelemetrySink`` that also stores columnar batches (same errors, same ack rule)."""

    async def write_series(self, batch: SeriesBatch) -> WriteResult: ...

"""Columnar log batches: records sharing a tag and a resource, kept as one list per field.

Why: a Fluentd Forward message carries ~1,000 events that share their tag, their resource
and their observed time, and a frozen ``LogRecord`` per event (plus walking those objects
again in the pipeline and the store) cost as much as decoding the events. A ``LogBatch``
keeps them as ``LogColumns`` parts, so the pipeline adds resource labels once per part and
the store groups, splits and encodes whole columns (C-level ``zip``/``map`` over lists)
instead of visiting each record's attributes. It is still a ``Sequence[LogRecord]``: code
that iterates or indexes it gets ordinary records, built on demand. Pure, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import compress
from operator import attrgetter
from typing import overload

from collectors._core.model import AttributeValue, LogRecord, Severity, SpanId, TraceId

Resource = Mapping[str, AttributeValue]

_FIELDS = (
    "time_unix_nano",
    "body",
    "severity_number",
    "severity_text",
    "attributes",
    "observed_time_unix_nano",
    "trace_id",
    "span_id",
)
_GETTERS = tuple(attrgetter(name) for name in _FIELDS)


@dataclass(frozen=True, slots=True, eq=False)
class LogColumns:
    """Records of one tag and one resource object; row ``i`` of every column is record ``i``.

    The lists are owned by the batch once built (treat as read-only). ``trace_ids`` and
    ``span_ids`` are ``None`` when no record has one (the common case costs no column).
    """

    tag: str
    resource: Resource
    times: list[int]
    bodies: list[str]
    severity_numbers: list[Severity | int]
    severity_texts: list[str]
    attributes: list[Mapping[str, AttributeValue]]
    observed: list[int]
    trace_ids: list[TraceId | None] | None = None
    span_ids: list[SpanId | None] | None = None

    def __len__(self) -> int:
        return len(self.times)

    def record(self, i: int) -> LogRecord:
        """Row ``i`` as a ``LogRecord`` (sharing this part's resource object)."""
        return LogRecord(
            time_unix_nano=self.times[i],
            body=self.bodies[i],
            tag=self.tag,
            severity_number=self.severity_numbers[i],
            severity_text=self.severity_texts[i],
            attributes=self.attributes[i],
            resource=self.resource,
            trace_id=self.trace_ids[i] if self.trace_ids is not None else None,
            span_id=self.span_ids[i] if self.span_ids is not None else None,
            observed_time_unix_nano=self.observed[i],
        )

    def rows(self, start: int, stop: int) -> LogColumns:
        """Rows ``start:stop`` (a copy of the column slices)."""
        return LogColumns(
            self.tag,
            self.resource,
            self.times[start:stop],
            self.bodies[start:stop],
            self.severity_numbers[start:stop],
            self.severity_texts[start:stop],
            self.attributes[start:stop],
            self.observed[start:stop],
            self.trace_ids[start:stop] if self.trace_ids is not None else None,
            self.span_ids[start:stop] if self.span_ids is not None else None,
        )

    def select(self, keep: Sequence[bool]) -> LogColumns:
        """The rows whose ``keep`` flag is true."""
        return LogColumns(
            self.tag,
            self.resource,
            list(compress(self.times, keep)),
            list(compress(self.bodies, keep)),
            list(compress(self.severity_numbers, keep)),
            list(compress(self.severity_texts, keep)),
            list(compress(self.attributes, keep)),
            list(compress(self.observed, keep)),
            list(compress(self.trace_ids, keep)) if self.trace_ids is not None else None,
            list(compress(self.span_ids, keep)) if self.span_ids is not None else None,
        )

    def with_resource(self, resource: Resource) -> LogColumns:
        """The same rows under another resource object."""
        return replace(self, resource=resource)

    @classmethod
    def of_records(cls, records: Sequence[LogRecord]) -> LogColumns:
        """Columns of ``records``, which must share one tag and equal resources (the first
        record's resource object stands for all)."""
        first = records[0]
        times, bodies, numbers, texts, attributes, observed, traces, spans = (
            list(map(get, records)) for get in _GETTERS
        )
        return cls(
            first.tag,
            first.resource,
            times,
            bodies,
            numbers,
            texts,
            attributes,
            observed,
            traces if any(traces) else None,
            spans if any(spans) else None,
        )


class LogBatch(Sequence[LogRecord]):
    """Log records as a tuple of ``LogColumns`` parts; ``len()`` counts records."""

    __slots__ = ("_len", "parts")

    def __init__(self, parts: Sequence[LogColumns]) -> None:
        self.parts: tuple[LogColumns, ...] = tuple(p for p in parts if len(p))
        self._len = sum(map(len, self.parts))

    @classmethod
    def of(cls, records: Sequence[LogRecord]) -> LogBatch:
        """``records`` as a batch: itself if it is one, else one part per run of records
        with the same tag and equal resources (a receiver's records usually form one run;
        the part keeps the run's first resource object for all of them)."""
        if isinstance(records, LogBatch):
            return records
        items = list(records)
        parts: list[LogColumns] = []
        start = 0
        for i in range(1, len(items) + 1):
            if i < len(items):
                item, first = items[i], items[start]
                if item.tag == first.tag and (
                    item.resource is first.resource or item.resource == first.resource
                ):
                    continue
            parts.append(LogColumns.of_records(items[start:i]))
            start = i
        return cls(parts)

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[LogRecord]:
        for part in self.parts:
            for i in range(len(part)):
                yield part.record(i)

    @overload
    def __getitem__(self, index: int) -> LogRecord: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[LogRecord]: ...

    def __getitem__(self, index: int | slice) -> LogRecord | Sequence[LogRecord]:
        if isinstance(index, slice):
            return list(self)[index]
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError("log batch index out of range")
        for part in self.parts:
            if index < len(part):
                return part.record(index)
            index -= len(part)
        raise IndexError("log batch index out of range")  # pragma: no cover - guarded above

    def split(self, size: int) -> list[LogBatch]:
        """Consecutive batches of at most ``size`` records (parts are cut where needed)."""
        if self._len <= size:
            return [self]
        out: list[LogBatch] = []
        current: list[LogColumns] = []
        room = size
        for part in self.parts:
            start = 0
            while start < len(part):
                take = min(room, len(part) - start)
                whole = start == 0 and take == len(part)
                current.append(part if whole else part.rows(start, start + take))
                start += take
                room -= take
                if room == 0:
                    out.append(LogBatch(current))
                    current, room = [], size
        if current:
            out.append(LogBatch(current))
        return out

    @staticmethod
    def merge(batches: Sequence[LogBatch]) -> LogBatch:
        """One batch of every part of ``batches``, in order."""
        if len(batches) == 1:
            return batches[0]
        return LogBatch([part for batch in batches for part in batch.parts])

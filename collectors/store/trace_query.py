"""What a trace read or search asks and answers, and the pure matching rules of a search.

Kept apart from the Redis code so that the search semantics are tested without a server:
a trace matches when one of its spans matches service, name and every tag, that span started
inside [start, end], and the whole trace's duration is within [min, max] duration.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from collectors._core.model import AttributeValue, Span, StatusCode, TraceId

NO_ROOT = "<root span not yet received>"
"""Tempo's root service/name when the root span of a trace is missing."""


@dataclass(frozen=True, slots=True)
class TraceQuery:
    """A search. Times are unix nanoseconds; ``None`` means no bound."""

    start_unix_nano: int
    end_unix_nano: int
    limit: int
    service: str | None = None
    name: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    min_duration_ns: int | None = None
    max_duration_ns: int | None = None


@dataclass(frozen=True, slots=True)
class TraceSummary:
    """One search hit, as Tempo's ``/api/search`` lists it."""

    trace_id: TraceId
    root_service_name: str
    root_trace_name: str
    start_time_unix_nano: int
    duration_ns: int
    span_count: int


@dataclass(frozen=True, slots=True)
class TraceResult:
    """A trace read by id: spans sorted by start time, ``truncated`` if bounds cut it."""

    spans: tuple[Span, ...]
    truncated: bool


@dataclass(frozen=True, slots=True)
class SearchResult:
    """Search hits (newest first) and what the search read to find them."""

    traces: tuple[TraceSummary, ...]
    truncated: bool
    inspected_traces: int
    inspected_bytes: int


def attribute_text(value: AttributeValue) -> str:
    """How a tag value compares with a search's ``key=value`` text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list):
        return ",".join(attribute_text(v) for v in value)
    return "" if value is None else str(value)


_STATUS_TEXT = {StatusCode.UNSET: "unset", StatusCode.OK: "ok", StatusCode.ERROR: "error"}


def _tag_value(span: Span, key: str) -> str | None:
    if key in span.attributes:
        return attribute_text(span.attributes[key])
    if key in span.resource:
        return attribute_text(span.resource[key])
    if key == "status.code":
        return _STATUS_TEXT.get(span.status_code, "unset")
    if key == "name":
        return span.name
    return None


def span_matches(span: Span, query: TraceQuery) -> bool:
    """Whether one span satisfies service, name, tags and the time window."""
    if query.service is not None and span.service_name != query.service:
        return False
    if query.name is not None and span.name != query.name:
        return False
    if not query.start_unix_nano <= span.start_time_unix_nano <= query.end_unix_nano:
        return False
    return all(_tag_value(span, k) == v for k, v in query.tags.items())


def summarize(trace_id: TraceId, spans: Sequence[Span]) -> TraceSummary:
    """Root span (no parent, or a parent not in the trace), start and duration of a trace."""
    start = min(s.start_time_unix_nano for s in spans)
    end = max(s.end_time_unix_nano for s in spans)
    ids = {s.span_id for s in spans}
    roots = [s for s in spans if not s.parent_span_id]
    if not roots:
        roots = [s for s in spans if s.parent_span_id not in ids]
    root = min(roots, key=lambda s: s.start_time_unix_nano) if roots else None
    return TraceSummary(
        trace_id=trace_id,
        root_service_name=root.service_name if root and not root.parent_span_id else NO_ROOT,
        root_trace_name=root.name if root and not root.parent_span_id else "",
        start_time_unix_nano=start,
        duration_ns=max(0, end - start),
        span_count=len(spans),
    )


def trace_matches(spans: Sequence[Span], query: TraceQuery) -> bool:
    """The search rule of this module's docstring, over one whole trace."""
    if not spans:
        return False
    start = min(s.start_time_unix_nano for s in spans)
    duration = max(s.end_time_unix_nano for s in spans) - start
    if query.min_duration_ns is not None and duration < query.min_duration_ns:
        return False
    if query.max_duration_ns is not None and duration > query.max_duration_ns:
        return False
    return any(span_matches(s, query) for s in spans)

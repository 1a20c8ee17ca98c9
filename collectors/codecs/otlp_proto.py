"""Pure conversions between meshfed's records and OTLP protobuf messages.

Receivers turn ``ExportTraceServiceRequest``/``ResourceSpans`` into ``model.Span`` with
``spans_from_otlp``; the store encodes spans and log records as OTLP protobuf (compact, and
lossless for everything the model holds) with ``spans_to_otlp`` / ``log_to_otlp``. No I/O.
OTLP ``kvlist`` values, which the model does not hold, are flattened to dotted keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from google.protobuf.internal.containers import RepeatedCompositeFieldContainer
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord as PbLogRecord
from opentelemetry.proto.logs.v1.logs_pb2 import ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, TracesData
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status as PbStatus

from collectors._core.errors import PermanentError
from collectors._core.model import (
    SEVERITY_BY_NUMBER,
    SPAN_ID_BYTES,
    TRACE_ID_BYTES,
    AttributeValue,
    LogRecord,
    Span,
    SpanEvent,
    SpanId,
    SpanKind,
    SpanLink,
    StatusCode,
    TraceId,
    id_bytes,
)

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


def _fill_any(out: AnyValue, value: AttributeValue) -> None:
    if value is None:
        return
    if isinstance(value, bool):
        out.bool_value = value
    elif isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise PermanentError(f"integer attribute {value} does not fit OTLP int64")
        out.int_value = value
    elif isinstance(value, float):
        out.double_value = value
    elif isinstance(value, str):
        out.string_value = value
    elif isinstance(value, bytes):
        out.bytes_value = value
    else:
        array = out.array_value
        array.SetInParent()
        for item in value:
            _fill_any(array.values.add(), item)


def _any_value(value: AnyValue) -> AttributeValue:
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [_any_value(v) for v in value.array_value.values]
    if which == "kvlist_value":  # flattened by _attributes; here only as an array element
        return str({kv.key: _any_value(kv.value) for kv in value.kvlist_value.values})
    result: AttributeValue = getattr(value, which)
    return result


def attributes_to_otlp(
    out: RepeatedCompositeFieldContainer[KeyValue], attributes: Mapping[str, AttributeValue]
) -> None:
    """Append ``attributes`` to a repeated ``KeyValue`` field (order kept)."""
    for key, value in attributes.items():
        _fill_any(out.add(key=key).value, value)


def attributes_from_otlp(pairs: Iterable[KeyValue], prefix: str = "") -> dict[str, AttributeValue]:
    """OTLP attributes as a dict; ``kvlist`` values become ``parent.child`` keys."""
    out: dict[str, AttributeValue] = {}
    for kv in pairs:
        if kv.value.WhichOneof("value") == "kvlist_value":
            out.update(attributes_from_otlp(kv.value.kvlist_value.values, f"{prefix}{kv.key}."))
        else:
            out[f"{prefix}{kv.key}"] = _any_value(kv.value)
    return out


def span_to_otlp(span: Span, out: PbSpan) -> None:
    """Fill the protobuf ``out`` with ``span`` (resource and scope are written elsewhere)."""
    out.trace_id = id_bytes(span.trace_id, TRACE_ID_BYTES, "trace id")
    out.span_id = id_bytes(span.span_id, SPAN_ID_BYTES, "span id")
    if span.parent_span_id:
        out.parent_span_id = id_bytes(span.parent_span_id, SPAN_ID_BYTES, "parent span id")
    out.name = span.name
    out.kind = int(span.kind)  # type: ignore[assignment]
    out.start_time_unix_nano = span.start_time_unix_nano
    out.end_time_unix_nano = span.end_time_unix_nano
    out.trace_state = span.trace_state
    attributes_to_otlp(out.attributes, span.attributes)
    out.dropped_attributes_count = span.dropped_attributes_count
    for event in span.events:
        pb_event = out.events.add(
            time_unix_nano=event.time_unix_nano,
            name=event.name,
            dropped_attributes_count=event.dropped_attributes_count,
        )
        attributes_to_otlp(pb_event.attributes, event.attributes)
    out.dropped_events_count = span.dropped_events_count
    for link in span.links:
        pb_link = out.links.add(
            trace_id=id_bytes(link.trace_id, TRACE_ID_BYTES, "link trace id"),
            span_id=id_bytes(link.span_id, SPAN_ID_BYTES, "link span id"),
            trace_state=link.trace_state,
            dropped_attributes_count=link.dropped_attributes_count,
        )
        attributes_to_otlp(pb_link.attributes, link.attributes)
    out.dropped_links_count = span.dropped_links_count
    if span.status_code or span.status_message:
        out.status.CopyFrom(PbStatus(code=int(span.status_code), message=span.status_message))  # type: ignore[arg-type]


def _resource_key(resource: Mapping[str, AttributeValue]) -> str:
    return repr(sorted(resource.items(), key=lambda kv: kv[0]))


def spans_to_otlp(spans: Sequence[Span]) -> TracesData:
    """Group spans by resource and scope into one ``TracesData`` (span order kept)."""
    data = TracesData()
    groups: dict[tuple[str, str, str], ScopeSpans] = {}
    resources: dict[str, ResourceSpans] = {}
    for span in spans:
        rkey = _resource_key(span.resource)
        resource_spans = resources.get(rkey)
        if resource_spans is None:
            resource_spans = data.resource_spans.add()
            resource_spans.resource.SetInParent()
            attributes_to_otlp(resource_spans.resource.attributes, span.resource)
            resources[rkey] = resource_spans
        gkey = (rkey, span.scope_name, span.scope_version)
        scope_spans = groups.get(gkey)
        if scope_spans is None:
            scope_spans = resource_spans.scope_spans.add()
            scope_spans.scope.CopyFrom(
                InstrumentationScope(name=span.scope_name, version=span.scope_version)
            )
            groups[gkey] = scope_spans
        span_to_otlp(span, scope_spans.spans.add())
    return data


def _span_from_otlp(
    pb: PbSpan, resource: Mapping[str, AttributeValue], scope: InstrumentationScope
) -> Span:
    if len(pb.trace_id) != 16 or len(pb.span_id) != 8:
        raise PermanentError("span with a trace id not 16 bytes or a span id not 8 bytes")
    return Span(
        trace_id=TraceId(pb.trace_id.hex()),
        span_id=SpanId(pb.span_id.hex()),
        name=pb.name,
        start_time_unix_nano=pb.start_time_unix_nano,
        end_time_unix_nano=pb.end_time_unix_nano,
        parent_span_id=SpanId(pb.parent_span_id.hex()) if pb.parent_span_id else None,
        kind=SpanKind(pb.kind) if pb.kind in SpanKind._value2member_map_ else SpanKind.UNSPECIFIED,
        status_code=StatusCode(pb.status.code)
        if pb.status.code in StatusCode._value2member_map_
        else StatusCode.UNSET,
        status_message=pb.status.message,
        trace_state=pb.trace_state,
        attributes=attributes_from_otlp(pb.attributes),
        resource=resource,
        scope_name=scope.name,
        scope_version=scope.version,
        events=tuple(
            SpanEvent(
                time_unix_nano=e.time_unix_nano,
                name=e.name,
                attributes=attributes_from_otlp(e.attributes),
                dropped_attributes_count=e.dropped_attributes_count,
            )
            for e in pb.events
        ),
        links=tuple(
            SpanLink(
                trace_id=TraceId(link.trace_id.hex()),
                span_id=SpanId(link.span_id.hex()),
                trace_state=link.trace_state,
                attributes=attributes_from_otlp(link.attributes),
                dropped_attributes_count=link.dropped_attributes_count,
            )
            for link in pb.links
        ),
        dropped_attributes_count=pb.dropped_attributes_count,
        dropped_events_count=pb.dropped_events_count,
        dropped_links_count=pb.dropped_links_count,
    )


def spans_from_otlp(resource_spans: Iterable[ResourceSpans]) -> list[Span]:
    """Every span of ``request.resource_spans`` (``ExportTraceServiceRequest`` or
    ``TracesData``) as ``model.Span``; raises ``PermanentError`` on malformed ids."""
    out: list[Span] = []
    for rs in resource_spans:
        resource = attributes_from_otlp(rs.resource.attributes)
        for ss in rs.scope_spans:
            out.extend(_span_from_otlp(pb, resource, ss.scope) for pb in ss.spans)
    return out


def log_to_otlp(record: LogRecord) -> ResourceLogs:
    """One log record as a ``ResourceLogs`` whose scope name carries the record's tag."""
    pb = PbLogRecord(
        time_unix_nano=record.time_unix_nano,
        observed_time_unix_nano=record.observed_time_unix_nano,
        severity_number=int(record.severity_number),  # type: ignore[arg-type]
        severity_text=record.severity_text,
    )
    pb.body.string_value = record.body
    attributes_to_otlp(pb.attributes, record.attributes)
    if record.trace_id:
        pb.trace_id = id_bytes(record.trace_id, TRACE_ID_BYTES, "log trace id")
    if record.span_id:
        pb.span_id = id_bytes(record.span_id, SPAN_ID_BYTES, "log span id")
    resource = Resource()
    attributes_to_otlp(resource.attributes, record.resource)
    scope = ScopeLogs(scope=InstrumentationScope(name=record.tag), log_records=[pb])
    return ResourceLogs(resource=resource, scope_logs=[scope])


def logs_from_otlp(resource_logs: ResourceLogs) -> list[LogRecord]:
    """Inverse of ``log_to_otlp`` (the scope name becomes the tag unless attributes say)."""
    out: list[LogRecord] = []
    resource = attributes_from_otlp(resource_logs.resource.attributes)
    for sl in resource_logs.scope_logs:
        for pb in sl.log_records:
            body = pb.body.string_value if pb.body.HasField("string_value") else ""
            if pb.body.WhichOneof("value") not in (None, "string_value"):
                body = repr(_any_value(pb.body))
            number = pb.severity_number
            out.append(
                LogRecord(
                    time_unix_nano=pb.time_unix_nano,
                    body=body,
                    tag=sl.scope.name,
                    severity_number=SEVERITY_BY_NUMBER.get(number, number),
                    severity_text=pb.severity_text,
                    attributes=attributes_from_otlp(pb.attributes),
                    resource=resource,
                    trace_id=TraceId(pb.trace_id.hex()) if pb.trace_id else None,
                    span_id=SpanId(pb.span_id.hex()) if pb.span_id else None,
                    observed_time_unix_nano=pb.observed_time_unix_nano,
                )
            )
    return out


_MAX_REASONS = 3


def _note(reasons: list[str], why: str) -> None:
    if why not in reasons and len(reasons) < _MAX_REASONS:
        reasons.append(why)


def spans_from_otlp_partial(
    resource_spans: Iterable[ResourceSpans],
) -> tuple[list[Span], int, str]:
    """Like ``spans_from_otlp`` but per span: ``(spans, rejected, reason)`` so that a
    receiver can store the good spans and report the rest as OTLP partial success."""
    out: list[Span] = []
    rejected = 0
    reasons: list[str] = []
    for rs in resource_spans:
        resource = attributes_from_otlp(rs.resource.attributes)
        for ss in rs.scope_spans:
            for pb in ss.spans:
                try:
                    out.append(_span_from_otlp(pb, resource, ss.scope))
                except PermanentError as e:
                    rejected += 1
                    _note(reasons, str(e))
    return out, rejected, "; ".join(reasons)


def logs_from_otlp_partial(
    resource_logs: Iterable[ResourceLogs],
) -> tuple[list[LogRecord], int, str]:
    """Every record of ``request.resource_logs``: ``(records, rejected, reason)``; a record
    whose trace id is not 0/16 bytes or span id not 0/8 bytes is rejected."""
    out: list[LogRecord] = []
    rejected = 0
    reasons: list[str] = []
    for rl in resource_logs:
        for record in logs_from_otlp(rl):
            if (record.trace_id and len(record.trace_id) != 32) or (
                record.span_id and len(record.span_id) != 16
            ):
                rejected += 1
                _note(reasons, "log record with a trace id not 16 bytes or a span id not 8 bytes")
                continue
            out.append(record)
    return out, rejected, "; ".join(reasons)

"""Spans and log records as JSON: Tempo's OTLP-JSON trace shape and meshfed's log lines. Pure.

OTLP-JSON as Tempo and Grafana read it: camelCase fields, 64-bit integers as strings, enums
by name (``SPAN_KIND_SERVER``), hex trace and span ids, byte values in base64.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from collectors._core.model import AttributeValue, LogRecord, Span, SpanKind, StatusCode

_KIND = {k: f"SPAN_KIND_{k.name}" for k in SpanKind}
_STATUS = {c: f"STATUS_CODE_{c.name}" for c in StatusCode}


def any_value(value: AttributeValue) -> dict[str, Any]:
    """One OTLP-JSON ``AnyValue``."""
    if value is None:
        return {}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, bytes):
        return {"bytesValue": base64.b64encode(value).decode()}
    return {"arrayValue": {"values": [any_value(v) for v in value]}}


def key_values(attributes: Mapping[str, AttributeValue]) -> list[dict[str, Any]]:
    """OTLP-JSON attributes list."""
    return [{"key": k, "value": any_value(v)} for k, v in attributes.items()]


def plain_value(value: AttributeValue) -> Any:
    """An attribute as a plain JSON value (bytes in base64) for the log API."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, list):
        return [plain_value(v) for v in value]
    return value


def span_json(span: Span) -> dict[str, Any]:
    """One span in OTLP-JSON; fields at their default value are left out, as protojson does."""
    out: dict[str, Any] = {"traceId": span.trace_id, "spanId": span.span_id}
    if span.trace_state:
        out["traceState"] = span.trace_state
    if span.parent_span_id:
        out["parentSpanId"] = span.parent_span_id
    out["name"] = span.name
    out["kind"] = _KIND.get(span.kind, "SPAN_KIND_UNSPECIFIED")
    out["startTimeUnixNano"] = str(span.start_time_unix_nano)
    out["endTimeUnixNano"] = str(span.end_time_unix_nano)
    if span.attributes:
        out["attributes"] = key_values(span.attributes)
    if span.dropped_attributes_count:
        out["droppedAttributesCount"] = span.dropped_attributes_count
    if span.events:
        out["events"] = [
            {
                "timeUnixNano": str(e.time_unix_nano),
                "name": e.name,
                "attributes": key_values(e.attributes),
                **(
                    {"droppedAttributesCount": e.dropped_attributes_count}
                    if e.dropped_attributes_count
                    else {}
                ),
            }
            for e in span.events
        ]
    if span.dropped_events_count:
        out["droppedEventsCount"] = span.dropped_events_count
    if span.links:
        out["links"] = [
            {
                "traceId": link.trace_id,
                "spanId": link.span_id,
                "traceState": link.trace_state,
                "attributes": key_values(link.attributes),
                "droppedAttributesCount": link.dropped_attributes_count,
            }
            for link in span.links
        ]
    if span.dropped_links_count:
        out["droppedLinksCount"] = span.dropped_links_count
    status: dict[str, Any] = {}
    if span.status_message:
        status["message"] = span.status_message
    if span.status_code:
        status["code"] = _STATUS.get(span.status_code, "STATUS_CODE_UNSET")
    out["status"] = status
    return out


def _resource_key(resource: Mapping[str, AttributeValue]) -> str:
    return repr(list(resource.items()))


def tempo_batches(spans: Sequence[Span]) -> list[dict[str, Any]]:
    """Spans grouped by resource then scope: the ``batches`` of Tempo's trace-by-id answer."""
    batches: dict[str, dict[str, Any]] = {}
    scopes: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for span in spans:
        rkey = _resource_key(span.resource)
        batch = batches.get(rkey)
        if batch is None:
            batch = {"resource": {"attributes": key_values(span.resource)}, "scopeSpans": []}
            batches[rkey] = batch
        skey = (rkey, span.scope_name, span.scope_version)
        scope_spans = scopes.get(skey)
        if scope_spans is None:
            scope: dict[str, Any] = {"name": span.scope_name}
            if span.scope_version:
                scope["version"] = span.scope_version
            scope_spans = []
            batch["scopeSpans"].append({"scope": scope, "spans": scope_spans})
            scopes[skey] = scope_spans
        scope_spans.append(span_json(span))
    return list(batches.values())


def log_json(record: LogRecord) -> dict[str, Any]:
    """One log line of ``/api/logs``."""
    return {
        "timeUnixNano": str(record.time_unix_nano),
        "observedTimeUnixNano": str(record.observed_time_unix_nano),
        "cluster": record.cluster,
        "tag": record.tag,
        "severityNumber": int(record.severity_number),
        "severityText": record.severity_text,
        "body": record.body,
        "attributes": {k: plain_value(v) for k, v in record.attributes.items()},
        "resource": {k: plain_value(v) for k, v in record.resource.items()},
        "traceId": record.trace_id or "",
        "spanId": record.span_id or "",
    }


def logs_json(records: Iterable[LogRecord]) -> list[dict[str, Any]]:
    return [log_json(r) for r in records]

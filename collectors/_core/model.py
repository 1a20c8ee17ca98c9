"""Telemetry records shared by every receiver, the store and the query APIs.

Plain frozen dataclasses: receivers produce them from wire formats (pure parsers), the
store persists them, the query layer reads them back. Every record carries resource labels,
among them ``cluster`` and ``region``, which the pipeline adds when a sender did not. The
trace/span id and severity conversions every format needs live here too, written once.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NewType

from collectors._core.errors import PermanentError

TraceId = NewType("TraceId", str)
"""32 lowercase hex characters (16 bytes), as OTLP-JSON and Tempo print it."""
SpanId = NewType("SpanId", str)
"""16 lowercase hex characters (8 bytes)."""
TRACE_ID_BYTES = 16
SPAN_ID_BYTES = 8

CLUSTER_LABEL = "cluster"
REGION_LABEL = "region"
METRIC_NAME_LABEL = "__name__"

AttributeValue = str | bool | int | float | bytes | list["AttributeValue"] | None
"""OTLP AnyValue: scalars, byte strings and arrays (kvlists are flattened to dotted keys)."""


def id_bytes(hex_id: str, size: int, what: str) -> bytes:
    """The ``size`` raw bytes of a hex trace or span id; ``PermanentError`` naming ``what``
    (``"trace id"``, ``"link span id"``...) when it is not hex or not ``size`` bytes long."""
    try:
        raw = bytes.fromhex(hex_id)
    except ValueError:
        raise PermanentError(f"{what} {hex_id!r} is not hex") from None
    if len(raw) != size:
        raise PermanentError(f"{what} {hex_id!r} must be {size} bytes")
    return raw


def frozen_map(items: Mapping[str, str] | None = None) -> Mapping[str, str]:
    """A read-only copy of ``items`` so that frozen records stay frozen all the way down."""
    return MappingProxyType(dict(items or {}))


class MetricType(enum.Enum):
    """Prometheus metric types (the metadata API's ``type`` field)."""

    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"
    SUMMARY = "summary"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Sample:
    """One value of one series at one instant.

    ``labels`` hold every label except ``__name__``: the name is its own field and the store
    adds it as ``__name__`` when it builds the series identity. Resource labels such as
    ``cluster`` and ``region`` are ordinary labels here.
    """

    name: str
    labels: Mapping[str, str]
    timestamp_ms: int
    value: float


@dataclass(frozen=True, slots=True)
class MetricMetadata:
    """What ``/api/v1/metadata`` returns for a metric family name."""

    name: str
    type: MetricType = MetricType.UNKNOWN
    help: str = ""
    unit: str = ""


class SpanKind(enum.IntEnum):
    """OTLP ``Span.SpanKind`` numbering."""

    UNSPECIFIED = 0
    INTERNAL = 1
    SERVER = 2
    CLIENT = 3
    PRODUCER = 4
    CONSUMER = 5


class StatusCode(enum.IntEnum):
    """OTLP ``Status.StatusCode`` numbering."""

    UNSET = 0
    OK = 1
    ERROR = 2


@dataclass(frozen=True, slots=True)
class SpanEvent:
    """A timestamped annotation inside a span (OTLP ``Span.Event``)."""

    time_unix_nano: int
    name: str
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    dropped_attributes_count: int = 0


@dataclass(frozen=True, slots=True)
class SpanLink:
    """A reference to another span (OTLP ``Span.Link``)."""

    trace_id: TraceId
    span_id: SpanId
    trace_state: str = ""
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    dropped_attributes_count: int = 0


@dataclass(frozen=True, slots=True)
class Span:
    """One OTLP span with its resource and instrumentation scope."""

    trace_id: TraceId
    span_id: SpanId
    name: str
    start_time_unix_nano: int
    end_time_unix_nano: int
    parent_span_id: SpanId | None = None
    kind: SpanKind = SpanKind.UNSPECIFIED
    status_code: StatusCode = StatusCode.UNSET
    status_message: str = ""
    trace_state: str = ""
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    resource: Mapping[str, AttributeValue] = field(default_factory=dict)
    scope_name: str = ""
    scope_version: str = ""
    events: tuple[SpanEvent, ...] = ()
    links: tuple[SpanLink, ...] = ()
    dropped_attributes_count: int = 0
    dropped_events_count: int = 0
    dropped_links_count: int = 0

    @property
    def service_name(self) -> str:
        """The ``service.name`` resource attribute, or OTLP's ``unknown_service``."""
        value = self.resource.get("service.name")
        return value if isinstance(value, str) and value else "unknown_service"

    @property
    def duration_ns(self) -> int:
        return max(0, self.end_time_unix_nano - self.start_time_unix_nano)


class Severity(enum.IntEnum):
    """OTLP SeverityNumber ranges' first values; Fluentd/syslog levels map onto them."""

    UNSPECIFIED = 0
    TRACE = 1
    DEBUG = 5
    INFO = 9
    WARN = 13
    ERROR = 17
    FATAL = 21


# Plain dicts typed read-only (a MappingProxyType lookup costs twice a dict's; these are
# read per record).
SEVERITY_NAMES: Mapping[str, Severity] = {
    "trace": Severity.TRACE,
    "debug": Severity.DEBUG,
    "info": Severity.INFO,
    "information": Severity.INFO,
    "notice": Severity.INFO,
    "warn": Severity.WARN,
    "warning": Severity.WARN,
    "error": Severity.ERROR,
    "err": Severity.ERROR,
    "fatal": Severity.FATAL,
    "critical": Severity.FATAL,
    "crit": Severity.FATAL,
    "alert": Severity.FATAL,
    "emerg": Severity.FATAL,
    "panic": Severity.FATAL,
}
"""Lowercase level names (OTLP short names, Fluentd, syslog, Go/Python loggers) → severity."""
SEVERITY_BY_NUMBER: Mapping[int, Severity] = {int(s): s for s in Severity}
"""The named severities by number; ``SEVERITY_BY_NUMBER.get(n, n)`` keeps other numbers."""


def severity_from_name(name: str) -> Severity | None:
    """The severity a level name stands for, in any case; ``None`` when it names none."""
    return SEVERITY_NAMES.get(name.lower())


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One log line: a Fluentd event, an OTLP log record, a DogStatsD event or service check.

    ``tag`` is the Fluentd tag (or the OTLP scope / a receiver-chosen tag); ``body`` is the
    message (a string, or the JSON of a structured record).
    """

    time_unix_nano: int
    body: str
    tag: str = ""
    severity_number: Severity | int = Severity.UNSPECIFIED
    severity_text: str = ""
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    resource: Mapping[str, AttributeValue] = field(default_factory=dict)
    trace_id: TraceId | None = None
    span_id: SpanId | None = None
    observed_time_unix_nano: int = 0

    @property
    def cluster(self) -> str:
        value = self.resource.get(CLUSTER_LABEL)
        return value if isinstance(value, str) else ""

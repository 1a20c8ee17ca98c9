"""What the OTLP gRPC and HTTP receivers share: decode, convert, write, answer partial success.

Both transports differ only in framing and status codes, so the work between "bytes arrived"
and "the store has them" lives here once: decode the ``Export*ServiceRequest`` (protobuf or
OTLP/JSON), convert it to model records (bad records are dropped and reported as OTLP
partial success), write them to the sink (which returns only after the store acknowledged),
and build the ``Export*ServiceResponse``. Errors stay in the collectors' tree:
``PermanentError`` -> 400 / INVALID_ARGUMENT, ``RetryableError`` -> 503 / UNAVAILABLE,
``TooBusyError`` (too many requests in flight) -> 429 / UNAVAILABLE.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from collectors._core.component import TelemetrySink, WriteResult
from collectors._core.errors import (
    PermanentError,
    RetryableError,
    StoreUnavailableError,
    TooBusyError,
    TooLargeError,
)
from collectors._core.selfmetrics import ReceiverMetrics
from collectors.codecs.otlp_json import parse_otlp_json
from collectors.codecs.otlp_proto import logs_from_otlp_partial, spans_from_otlp_partial
from collectors.receivers.otlp.config import OtlpSettings
from collectors.receivers.otlp.protocol.metrics import MetricsConversion, samples_from_otlp

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Signal:
    """One OTLP signal: its request/response types and where each transport serves it."""

    name: str
    """``traces``, ``metrics`` or ``logs`` (the HTTP path and the metrics' ``signal`` label)."""
    request: type[Message]
    response: type[Message]
    rejected_field: str
    """``partial_success`` counter: ``rejected_spans`` / ``rejected_data_points`` / ..."""
    grpc_service: str


TRACES = Signal(
    "traces",
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
    "rejected_spans",
    "opentelemetry.proto.collector.trace.v1.TraceService",
)
METRICS = Signal(
    "metrics",
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
    "rejected_data_points",
    "opentelemetry.proto.collector.metrics.v1.MetricsService",
)
LOGS = Signal(
    "logs",
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
    "rejected_log_records",
    "opentelemetry.proto.collector.logs.v1.LogsService",
)
SIGNALS = (TRACES, METRICS, LOGS)


def decode_request(signal: Signal, body: bytes, *, json: bool) -> Any:
    """The signal's ``Export*ServiceRequest`` from protobuf or OTLP/JSON bytes."""
    if json:
        return parse_otlp_json(body, signal.request())
    try:
        return signal.request.FromString(body)
    except (DecodeError, RuntimeError, ValueError) as e:
        raise PermanentError(f"invalid {signal.request.__name__} protobuf: {e}") from None


def response_for(signal: Signal, rejected: int, message: str) -> Message:
    """The ``Export*ServiceResponse``; ``partial_success`` only set when something was refused
    (the spec: a full success leaves it unset)."""
    response = signal.response()
    if rejected or message:
        partial = response.partial_success  # type: ignore[attr-defined]
        setattr(partial, signal.rejected_field, rejected)
        partial.error_message = message or "rejected"
    return response


class OtlpIngest:
    """Turns decoded requests into sink writes and responses; bounds requests in flight."""

    def __init__(
        self,
        *,
        settings: OtlpSettings,
        sink: TelemetrySink,
        metrics: ReceiverMetrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._sink = sink
        self._metrics = metrics
        self._clock = clock
        self._in_flight = 0

    @property
    def metrics(self) -> ReceiverMetrics:
        return self._metrics

    @contextmanager
    def admit(self) -> Iterator[None]:
        """Hold one of ``max_concurrent_requests`` slots, or raise ``TooBusyError``."""
        if self._in_flight >= self._settings.max_concurrent_requests:
            self._metrics.rejected("too_many_requests")
            raise TooBusyError(
                f"more than {self._settings.max_concurrent_requests} OTLP requests in flight"
            )
        self._in_flight += 1
        self._metrics.set_queue_depth(self._in_flight)
        try:
            yield
        finally:
            self._in_flight -= 1
            self._metrics.set_queue_depth(self._in_flight)

    def check_size(self, size: int) -> None:
        if size > self._settings.max_message_bytes:
            self._metrics.rejected("too_large")
            raise TooLargeError(
                f"message of {size} bytes exceeds otlp.max_message_bytes "
                f"({self._settings.max_message_bytes})"
            )

    def decode(self, signal: Signal, body: bytes, *, json: bool) -> Any:
        self.check_size(len(body))
        try:
            return decode_request(signal, body, json=json)
        except PermanentError:
            self._metrics.rejected("bad_request")
            raise

    async def export(self, signal: Signal, request: Any) -> Message:
        """Convert, write (returns after the store acknowledged), answer."""
        if signal is TRACES:
            return await self._traces(request)
        if signal is METRICS:
            return await self._samples(request)
        return await self._logs(request)

    async def _write(self, write: Awaitable[T], n: int) -> T:
        """Await the store write of ``n`` records, counting why it failed or how long it took."""
        started = self._clock()
        try:
            result = await write
        except StoreUnavailableError:
            self._metrics.rejected("store_unavailable")
            raise
        except RetryableError:
            self._metrics.rejected("retryable")
            raise
        except PermanentError:
            self._metrics.rejected("invalid_data", n)
            raise
        self._metrics.observe_batch(self._clock() - started)
        return result

    def _partial(self, signal: Signal, rejected: int, message: str) -> Message:
        if rejected:
            self._metrics.rejected("invalid_data", rejected)
        return response_for(signal, rejected, message)

    async def _traces(self, request: ExportTraceServiceRequest) -> Message:
        spans, rejected, message = spans_from_otlp_partial(request.resource_spans)
        return await self._records(
            TRACES, "spans", spans, rejected, message, self._sink.write_spans
        )

    async def _logs(self, request: ExportLogsServiceRequest) -> Message:
        records, rejected, message = logs_from_otlp_partial(request.resource_logs)
        return await self._records(LOGS, "logs", records, rejected, message, self._sink.write_logs)

    async def _records(  # noqa: PLR0917 -- one conversion's outcome, spelled out
        self,
        signal: Signal,
        kind: str,
        records: list[R],
        rejected: int,
        message: str,
        write: Callable[[list[R]], Awaitable[object]],
    ) -> Message:
        """Spans or log records: write the valid ones, answer partial success for the rest."""
        self._metrics.received(kind, len(records) + rejected)
        if records:
            await self._write(write(records), len(records))
            self._metrics.stored(kind, len(records))
        return self._partial(signal, rejected, message)

    async def _samples_and_metadata(self, conv: MetricsConversion) -> WriteResult:
        result = await self._sink.write_samples(conv.samples)
        if conv.metadata:
            await self._sink.write_metadata(list(conv.metadata.values()))
        return result

    async def _samples(self, request: ExportMetricsServiceRequest) -> Message:
        conv = samples_from_otlp(request.resource_metrics)
        self._metrics.received("samples", len(conv.samples))
        rejected, message = conv.rejected, conv.error_message
        if conv.samples:
            result = await self._write(self._samples_and_metadata(conv), len(conv.samples))
            self._metrics.stored("samples", result.accepted + result.duplicates_ignored)
            if result.rejected:
                # Samples, not data points: a histogram point is several samples. Reported
                # as an upper bound of the points refused, never more than the request held.
                self._metrics.rejected("store_refused", result.rejected)
                rejected = min(conv.data_points, rejected + result.rejected)
                why = (
                    f"{result.out_of_order} out of order, {result.duplicate_conflicts} "
                    f"duplicate timestamps, {result.over_limit} over the series limit"
                )
                message = f"{message}; {why}" if message else why
        if conv.rejected:
            self._metrics.rejected("invalid_data", conv.rejected)
        return response_for(METRICS, rejected, message)

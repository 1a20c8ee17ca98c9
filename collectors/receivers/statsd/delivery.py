"""Hands every StatsD flush to the sink — the pipeline — without keeping any of it back.

The sink does the rest of the path every receiver shares (resource labels, memory limit,
merging batches into store writes, its bounded queue), so the pipeline is the only place
StatsD's samples wait. What is left here is what StatsD alone needs:

* **The flush timer never waits for the store.** Rates are computed for flushes on the
  interval boundary (like the reference daemon's), so each flush is handed over by a task of
  its own, in batches of ``max_batch_samples``, one batch after the other; the receiver
  keeps no queue of flushes. Shutdown waits for these tasks up to ``shutdown_grace_s``, then
  cancels them.
* **Nothing is retried.** StatsD has no acknowledgement, and like the reference daemon,
  whose backends lose a flush they cannot deliver, a batch the sink refuses is dropped and
  counted. Since nothing is retried, a retry can never hold a flush back behind a later
  one, and flush order is not violated by retries. (Flushes are not serialized either: when
  handing one over takes longer than the interval, the next one's task starts beside it, and
  a sample of the older flush reaching a series after the newer one is refused by the store
  as out of order and counted.)

Everything is counted per sample (and per event), nothing is logged per sample:
``stored``; ``dropped{reason="memory_limit"|"queue_full"|"store_unavailable"}`` for a batch
refused with a ``RetryableError`` (``MemoryLimitError``, ``QueueFullError``, any other);
``rejected{reason="permanent"}`` for a ``PermanentError``; ``rejected{reason=
"out_of_order"|...}`` from the store's ``WriteResult``; ``dropped{reason="shutdown"}`` for
what a task cancelled at shutdown still held; ``dropped{reason="internal_error"}`` for the
rest of a flush after an unexpected exception (logged once, with its traceback). A flush
that lost anything logs one line, whatever the number of its batches.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from collectors._core.component import TelemetrySink
from collectors._core.errors import (
    MemoryLimitError,
    PermanentError,
    QueueFullError,
    RetryableError,
)
from collectors._core.model import LogRecord, Sample, Severity
from collectors._core.selfmetrics import ReceiverMetrics
from collectors._kits.tasks import cancel_and_wait
from collectors.receivers.statsd.aggregate import FlushResult
from collectors.receivers.statsd.config import StatsdSettings
from collectors.receivers.statsd.protocol.events import DogEvent, ServiceCheck

log = logging.getLogger(__name__)

_ALERT_SEVERITY = {
    "error": Severity.ERROR,
    "warning": Severity.WARN,
    "info": Severity.INFO,
    "success": Severity.INFO,
}
_CHECK_SEVERITY = (Severity.INFO, Severity.WARN, Severity.ERROR, Severity.UNSPECIFIED)
_CHECK_STATUS = ("OK", "WARNING", "CRITICAL", "UNKNOWN")
_REJECTED = ("out_of_order", "duplicate_conflicts", "over_limit")


def dropped_reason(error: RetryableError) -> str:
    """The ``dropped`` reason of a batch the sink refused with ``error`` (not retried)."""
    if isinstance(error, MemoryLimitError):
        return "memory_limit"
    if isinstance(error, QueueFullError):
        return "queue_full"
    return "store_unavailable"


@dataclass(slots=True)
class _Losses:
    """What one flush lost to refusals, for its single log line."""

    items: dict[str, int] = field(default_factory=dict)
    """Samples and events per reason."""
    first: Exception | None = None
    """The first refusal, quoted in the log line."""

    def add(self, reason: str, n: int, error: Exception) -> None:
        self.items[reason] = self.items.get(reason, 0) + n
        if self.first is None:
            self.first = error

    def __str__(self) -> str:
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(self.items.items()))
        return f"{reasons}; first refusal: {self.first}"


def event_record(
    event: DogEvent | ServiceCheck, now_ms: int, resource: Mapping[str, str]
) -> LogRecord:
    """A DogStatsD event or service check as a log record (tag ``statsd.event`` /
    ``statsd.service_check``); ``now_ms`` stamps records without a timestamp of their own."""
    if isinstance(event, DogEvent):
        attributes: dict[str, str] = {
            "statsd.kind": "event",
            "event.title": event.title,
            "event.priority": event.priority,
            "event.alert_type": event.alert_type,
        }
        for name, value in (
            ("host.name", event.hostname),
            ("event.aggregation_key", event.aggregation_key),
            ("event.source_type", event.source_type),
        ):
            if value:
                attributes[name] = value
        body, severity, tag = (
            f"{event.title}\n{event.text}",
            _ALERT_SEVERITY[event.alert_type],
            "statsd.event",
        )
    else:
        attributes = {
            "statsd.kind": "service_check",
            "check.name": event.name,
            "check.status": _CHECK_STATUS[event.status],
        }
        if event.hostname:
            attributes["host.name"] = event.hostname
        body, severity, tag = (
            event.message or event.name,
            _CHECK_SEVERITY[event.status],
            "statsd.service_check",
        )
    for name, value in event.tags:
        attributes.setdefault(name, value)
    seconds = event.timestamp_s
    time_ns = seconds * 1_000_000_000 if seconds is not None else now_ms * 1_000_000
    return LogRecord(
        time_unix_nano=time_ns,
        body=body,
        tag=tag,
        severity_number=severity,
        severity_text=severity.name,
        attributes=attributes,
        resource=dict(resource),
        observed_time_unix_nano=now_ms * 1_000_000,
    )


class FlushDelivery:
    """Hands each offered flush to ``sink`` in a task of its own; keeps the tasks for shutdown."""

    def __init__(
        self,
        *,
        sink: TelemetrySink,
        metrics: ReceiverMetrics,
        settings: StatsdSettings,
        resource: Mapping[str, str],
    ) -> None:
        self._sink = sink
        self._metrics = metrics
        self._batch = settings.max_batch_samples
        self._resource = resource
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def in_flight(self) -> int:
        """Flushes still being handed to the sink."""
        return len(self._tasks)

    def offer(self, result: FlushResult) -> None:
        """Start handing ``result`` to the sink; returns at once (the timer never waits)."""
        if not result.samples and not result.events:
            return
        task = asyncio.create_task(self._deliver(result), name="statsd-flush-write")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s`` for every offered flush to be handed over, then cancel
        the rest (what they still held is counted as ``dropped{reason="shutdown"}``)."""
        tasks = list(self._tasks)
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=timeout_s)
        if late:
            log.warning("statsd: %d flushes not handed over within the shutdown grace", len(late))
        await cancel_and_wait(tasks)

    async def _deliver(self, result: FlushResult) -> None:
        samples, events = result.samples, result.events
        left = len(samples) + len(events)
        losses = _Losses()
        try:
            for start in range(0, len(samples), self._batch):
                batch = samples[start : start + self._batch]  # one slice at a time: bounded copies
                await self._write_samples(batch, losses)
                left -= len(batch)
            if events:
                await self._write_events(events, losses)
                left -= len(events)
        except asyncio.CancelledError:
            self._metrics.dropped("shutdown", left)
            raise
        except Exception:  # a bug: nobody awaits this task, so report it here, once
            self._metrics.dropped("internal_error", left)
            log.exception(
                "statsd: handing a flush to the pipeline failed unexpectedly; %d of its %d "
                "samples and events not written%s",
                left,
                len(samples) + len(events),
                f" (before that, refused: {losses})" if losses.items else "",
            )
            return
        if losses.items:
            log.warning(
                "statsd: a flush of %d samples and events lost %s",
                len(samples) + len(events),
                losses,
            )

    async def _write_samples(self, batch: Sequence[Sample], losses: _Losses) -> None:
        began = time.monotonic()
        try:
            written = await self._sink.write_samples(batch)
        except (RetryableError, PermanentError) as e:
            self._refused(e, len(batch), losses)
            return
        for reason in _REJECTED:
            if n := getattr(written, reason):
                self._metrics.rejected(reason, n)
        self._metrics.stored("metrics", written.accepted + written.duplicates_ignored)
        self._metrics.observe_batch(time.monotonic() - began)

    async def _write_events(
        self, events: Sequence[DogEvent | ServiceCheck], losses: _Losses
    ) -> None:
        now_ms = round(time.time() * 1000)
        records = [event_record(e, now_ms, self._resource) for e in events]
        try:
            await self._sink.write_logs(records)
        except (RetryableError, PermanentError) as e:
            self._refused(e, len(records), losses)
            return
        self._metrics.stored("logs", len(records))

    def _refused(self, error: RetryableError | PermanentError, n: int, losses: _Losses) -> None:
        """Count a refused batch of ``n`` under its reason; it is not retried."""
        if isinstance(error, PermanentError):
            reason = "permanent"
            self._metrics.rejected(reason, n)
        else:
            reason = dropped_reason(error)
            self._metrics.dropped(reason, n)
        losses.add(reason, n, error)

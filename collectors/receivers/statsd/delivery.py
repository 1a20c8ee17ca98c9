"""Hands every StatsD flush to the sink — the pipeline — in flush order, retrying refusals.

The sink does the rest of the path every receiver shares (resource labels, memory limit,
merging batches into store writes, the pipeline's bounded queue). What is left here is what
StatsD alone needs, because it has no acknowledgement: nobody resends a flush the store
could not take, so a batch refused with a ``RetryableError`` is retried ``write_retries``
times with jittered backoff (:mod:`collectors._kits.retry`) before it is dropped and counted.
Retrying holds the flush, hence two rules:

* flushes are written one after the other, in flush order: a later flush must not reach the
  store before an earlier one still being retried (the store would refuse the earlier
  samples as out of order);
* at most ``max_pending_flushes`` flushes wait behind the one being written; a flush beyond
  that is dropped and counted at once, so a store outage costs bounded memory.

Everything is counted (``stored``, ``dropped{reason="store_unavailable"|"queue_full"|
"shutdown"|"internal_error"}``, ``rejected``), nothing is logged per sample.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TypeVar

from collectors._core.component import TelemetrySink
from collectors._core.errors import PermanentError, RetryableError
from collectors._core.model import LogRecord, Sample, Severity
from collectors._core.selfmetrics import ReceiverMetrics
from collectors._kits.retry import Backoff, retry
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

T = TypeVar("T")


class _GaveUpError(Exception):
    """A write was given up (already counted); the flush goes on with its next batch."""


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
    """Writes offered flushes to ``sink`` one at a time, in the order they were offered."""

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
        self._s = settings
        self._resource = resource
        self._backoff = Backoff(base_s=settings.retry_base_s, cap_s=settings.flush_interval_s)
        self._turn = asyncio.Lock()
        """Held by the flush being written; the others wait for it in offer order (FIFO)."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiting = 0

    @property
    def waiting(self) -> int:
        """Flushes offered but not yet being written (``queue_depth``)."""
        return self._waiting

    def offer(self, result: FlushResult) -> bool:
        """Write ``result`` after the flushes offered before it; returns at once. False (and
        its samples and events counted as dropped) when too many flushes already wait."""
        if self._waiting >= self._s.max_pending_flushes:
            self._metrics.dropped("queue_full", len(result.samples) + len(result.events))
            return False
        self._set_waiting(self._waiting + 1)
        task = asyncio.create_task(self._deliver(result), name="statsd-write")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def drain(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s`` for every offered flush to be written, then cancel the
        rest (what they still held is counted as ``dropped{reason="shutdown"}``)."""
        tasks = list(self._tasks)
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=timeout_s)
        if late:
            log.warning("statsd: %d flushes not written at shutdown", len(late))
        await cancel_and_wait(tasks)

    def _set_waiting(self, n: int) -> None:
        self._waiting = n
        self._metrics.set_queue_depth(n)

    async def _deliver(self, result: FlushResult) -> None:
        size = self._s.max_batch_samples
        samples = result.samples
        left = len(samples) + len(result.events)
        queued = True
        try:
            async with self._turn:
                queued = False
                self._set_waiting(self._waiting - 1)
                for start in range(0, len(samples), size):
                    batch = samples[start : start + size]  # one slice at a time: bounded copies
                    await self._write_samples(batch)
                    left -= len(batch)
                if result.events:
                    await self._write_events(result.events)
        except asyncio.CancelledError:
            self._metrics.dropped("shutdown", left)
            raise
        except Exception:  # a bug: nobody awaits this task, so report it here; go on
            log.exception("statsd: writing a flush failed unexpectedly")
            self._metrics.dropped("internal_error", left)
        finally:
            if queued:  # cancelled before its turn
                self._set_waiting(self._waiting - 1)

    async def _write_samples(self, batch: Sequence[Sample]) -> None:
        began = time.monotonic()
        try:
            written = await self._retrying(
                functools.partial(self._sink.write_samples, batch), len(batch)
            )
        except _GaveUpError:
            return
        for reason in _REJECTED:
            if n := getattr(written, reason):
                self._metrics.rejected(reason, n)
        self._metrics.stored("metrics", written.accepted + written.duplicates_ignored)
        self._metrics.observe_batch(time.monotonic() - began)

    async def _write_events(self, events: Sequence[DogEvent | ServiceCheck]) -> None:
        now_ms = round(time.time() * 1000)
        records = [event_record(e, now_ms, self._resource) for e in events]
        try:
            await self._retrying(functools.partial(self._sink.write_logs, records), len(records))
        except _GaveUpError:
            return
        self._metrics.stored("logs", len(records))

    async def _retrying(self, call: Callable[[], Awaitable[T]], items: int) -> T:
        """``call()`` with the shared retry policy; a final refusal is counted and becomes
        ``_GaveUpError``."""
        try:
            return await retry(call, retries=self._s.write_retries, backoff=self._backoff)
        except RetryableError as e:
            log.warning(
                "statsd: store write failed after %d attempts: %s", self._s.write_retries + 1, e
            )
            self._metrics.dropped("store_unavailable", items)
        except PermanentError as e:
            log.warning("statsd: store refused a batch of %d: %s", items, e)
            self._metrics.rejected("permanent", items)
        raise _GaveUpError

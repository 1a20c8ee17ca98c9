"""StatsD flushes on their way to the sink: batches, no retry, shutdown and what is counted.

The sink is :class:`tests.helpers.memsink.MemorySink` (the store's rules for samples), made to
refuse given writes with the errors the pipeline raises; nothing here opens a socket.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace

import pytest
from prometheus_client import CollectorRegistry

from collectors._core.component import WriteResult
from collectors._core.errors import (
    LimitExceededError,
    MemoryLimitError,
    PermanentError,
    QueueFullError,
    ShuttingDownError,
    StoreUnavailableError,
)
from collectors._core.model import LogRecord, Sample
from collectors._core.selfmetrics import ReceiverMetricFamilies, ReceiverMetrics
from collectors.receivers.statsd.aggregate import FlushResult
from collectors.receivers.statsd.config import StatsdSettings
from collectors.receivers.statsd.delivery import FlushDelivery
from collectors.receivers.statsd.protocol.events import parse_event, parse_service_check
from tests.helpers.memsink import MemorySink

SETTINGS = StatsdSettings(tcp_listen=None, flush_interval_s=0.1, max_batch_samples=3)
LOGGER = "collectors.receivers.statsd.delivery"


class RefusingSink(MemorySink):
    """A MemorySink whose next writes raise ``refusals`` in turn; counts every attempt."""

    def __init__(self, *refusals: Exception) -> None:
        super().__init__()
        self.refusals = list(refusals)
        self.attempts = 0

    def _next(self) -> None:
        self.attempts += 1
        if self.refusals:
            raise self.refusals.pop(0)

    async def write_samples(self, samples: Sequence[Sample]) -> WriteResult:
        self._next()
        return await super().write_samples(samples)

    async def write_logs(self, records: Sequence[LogRecord]) -> None:
        self._next()
        await super().write_logs(records)


class HangingSink(MemorySink):
    """A MemorySink that writes ``batches`` batches, then never answers again."""

    def __init__(self, batches: int) -> None:
        super().__init__()
        self.left = batches

    async def write_samples(self, samples: Sequence[Sample]) -> WriteResult:
        if self.left == 0:
            await asyncio.Event().wait()
        self.left -= 1
        return await super().write_samples(samples)


class Counts:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.metrics = ReceiverMetrics(
            families=ReceiverMetricFamilies.create(self.registry), receiver="statsd"
        )

    def get(self, family: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(
            f"meshfed_receiver_{family}", {"receiver": "statsd", **labels}
        )

    def __call__(self, family: str, **labels: str) -> float:
        return self.get(family, **labels) or 0.0


def flush(at_ms: int, n: int = 2, series: str = "hits") -> FlushResult:
    samples = [Sample(f"stats_{series}_{i}", {}, at_ms, float(i)) for i in range(n)]
    return FlushResult(samples=samples, events=[], dropped=0, lines=n, bad_lines=0)


def delivery(sink: MemorySink, counts: Counts, **changes: object) -> FlushDelivery:
    return FlushDelivery(
        sink=sink,
        metrics=counts.metrics,
        settings=replace(SETTINGS, **changes),  # type: ignore[arg-type]
        resource={"cluster": "c1"},
    )


def warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and r.levelno >= logging.WARNING]


async def test_a_flush_is_handed_over_in_batches_and_counted() -> None:
    sink, counts = MemorySink(), Counts()
    d = delivery(sink, counts)
    d.offer(flush(1000, n=7))
    await d.drain(5)
    assert sink.batches == [3, 3, 1]
    assert counts("stored_total", signal="metrics") == 7
    assert counts("batch_latency_seconds_count") == 3
    assert counts.get("queue_depth") is None  # StatsD keeps no queue of its own


async def test_the_timer_never_waits_for_the_store() -> None:
    sink, counts = MemorySink(), Counts()
    sink.gate = asyncio.Event()  # the store hangs
    d = delivery(sink, counts)
    for at_ms in (1000, 2000, 3000):
        d.offer(flush(at_ms))  # returns at once: one task per flush
    assert d.in_flight == 3
    await asyncio.sleep(0.01)
    assert sink.samples == []
    sink.gate.set()
    await d.drain(5)
    assert d.in_flight == 0
    assert [s.timestamp_ms for s in sink.samples] == [1000, 1000, 2000, 2000, 3000, 3000]
    assert counts("stored_total", signal="metrics") == 6
    assert counts("dropped_total", reason="queue_full") == 0


async def test_an_empty_flush_starts_no_task() -> None:
    sink, counts = MemorySink(), Counts()
    d = delivery(sink, counts)
    d.offer(FlushResult(samples=[], events=[], dropped=0, lines=0, bad_lines=0))
    assert d.in_flight == 0
    await d.drain(5)
    assert sink.batches == []


@pytest.mark.parametrize(
    ("error", "family", "reason"),
    [
        pytest.param(
            StoreUnavailableError("redis down"),
            "dropped_total",
            "store_unavailable",
            id="store-unavailable",
        ),
        pytest.param(
            MemoryLimitError("over the limit"), "dropped_total", "memory_limit", id="memory-limit"
        ),
        pytest.param(
            QueueFullError("pipeline queue full"), "dropped_total", "queue_full", id="queue-full"
        ),
        pytest.param(
            ShuttingDownError("shutting down"),
            "dropped_total",
            "store_unavailable",
            id="other-retryable",
        ),
        pytest.param(PermanentError("bad batch"), "rejected_total", "permanent", id="permanent"),
        pytest.param(
            LimitExceededError("too many series"),
            "rejected_total",
            "permanent",
            id="permanent-subclass",
        ),
    ],
)
async def test_a_refused_batch_is_counted_once_and_not_retried(
    error: Exception, family: str, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    sink, counts = RefusingSink(error), Counts()
    d = delivery(sink, counts)
    d.offer(flush(1000, n=5))  # batches of 3 and 2; the first is refused
    await d.drain(5)
    assert sink.attempts == 2  # one call per batch: no retry
    assert counts(family, reason=reason) == 3
    assert counts("stored_total", signal="metrics") == 2
    assert sink.batches == [2]
    [line] = warnings(caplog)
    assert f"3 {reason}" in line.getMessage()
    assert str(error) in line.getMessage()


async def test_a_flush_refused_batch_after_batch_logs_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink, counts = (
        RefusingSink(
            StoreUnavailableError("down"), QueueFullError("full"), StoreUnavailableError("down")
        ),
        Counts(),
    )
    d = delivery(sink, counts)
    d.offer(flush(1000, n=7))
    await d.drain(5)
    assert sink.attempts == 3
    assert counts("dropped_total", reason="store_unavailable") == 4  # batches of 3 and 1
    assert counts("dropped_total", reason="queue_full") == 3
    assert counts("stored_total", signal="metrics") == 0
    [line] = warnings(caplog)
    assert "3 queue_full, 4 store_unavailable" in line.getMessage()


async def test_a_flush_after_a_refused_one_is_handed_over() -> None:
    sink, counts = RefusingSink(StoreUnavailableError("down")), Counts()
    d = delivery(sink, counts)
    d.offer(flush(1000))
    await asyncio.sleep(0.01)
    d.offer(flush(2000))
    await d.drain(5)
    assert counts("dropped_total", reason="store_unavailable") == 2
    assert [s.timestamp_ms for s in sink.samples] == [2000, 2000]


async def test_what_the_store_refuses_in_its_result_is_counted() -> None:
    sink, counts = MemorySink(), Counts()
    d = delivery(sink, counts)
    d.offer(flush(2000))
    await d.drain(5)
    d.offer(flush(1000))  # older than what the store holds
    await d.drain(5)
    assert counts("rejected_total", reason="out_of_order") == 2
    assert counts("stored_total", signal="metrics") == 2


@pytest.mark.parametrize(
    ("written_batches", "stored", "lost"),
    [
        pytest.param(0, 0, 9, id="nothing-written"),
        pytest.param(1, 3, 6, id="one-batch-written"),
        pytest.param(2, 6, 3, id="last-batch-left"),
    ],
)
async def test_what_shutdown_cannot_hand_over_is_counted(
    written_batches: int, stored: int, lost: int
) -> None:
    sink, counts = HangingSink(written_batches), Counts()
    d = delivery(sink, counts)
    d.offer(flush(1000, n=7))  # batches of 3, 3, 1
    d.offer(flush(2000, n=2, series="other"))  # hangs too once the budget is spent
    await asyncio.sleep(0.01)
    await d.drain(0.05)
    assert d.in_flight == 0
    assert counts("stored_total", signal="metrics") == stored
    assert counts("dropped_total", reason="shutdown") == lost


async def test_shutdown_waits_for_flushes_within_the_grace() -> None:
    sink, counts = MemorySink(), Counts()
    sink.gate = asyncio.Event()
    d = delivery(sink, counts)
    d.offer(flush(1000, n=4))
    asyncio.get_running_loop().call_later(0.02, sink.gate.set)
    await d.drain(5)
    assert counts("stored_total", signal="metrics") == 4
    assert counts("dropped_total", reason="shutdown") == 0


@pytest.mark.parametrize(
    ("line", "tag", "body", "attribute"),
    [
        pytest.param(
            "_sc|db.check|2|#env:prod|m:down",
            "statsd.service_check",
            "down",
            ("check.status", "CRITICAL"),
            id="service-check",
        ),
        pytest.param(
            "_e{6,4}:deploy|done|t:warning|#env:prod",
            "statsd.event",
            "deploy\ndone",
            ("event.alert_type", "warning"),
            id="event",
        ),
    ],
)
async def test_events_and_service_checks_are_handed_over_as_logs(
    line: str, tag: str, body: str, attribute: tuple[str, str]
) -> None:
    sink, counts = MemorySink(), Counts()
    d = delivery(sink, counts)
    event = parse_service_check(line) if line.startswith("_sc") else parse_event(line)
    d.offer(FlushResult(samples=[], events=[event], dropped=0, lines=1, bad_lines=0))
    await d.drain(5)
    [record] = sink.logs
    name, value = attribute
    assert (record.tag, record.body, record.attributes[name]) == (tag, body, value)
    assert record.attributes["env"] == "prod"
    assert record.resource == {"cluster": "c1"}
    assert counts("stored_total", signal="logs") == 1


async def test_refused_events_are_counted_not_retried() -> None:
    sink, counts = RefusingSink(MemoryLimitError("over the limit")), Counts()
    d = delivery(sink, counts)
    check = parse_service_check("_sc|db.check|0")
    d.offer(FlushResult(samples=[], events=[check, check], dropped=0, lines=2, bad_lines=0))
    await d.drain(5)
    assert sink.attempts == 1
    assert counts("dropped_total", reason="memory_limit") == 2
    assert sink.logs == []


async def test_an_unexpected_error_is_logged_once_and_later_flushes_still_go(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink, counts = MemorySink(), Counts()
    d = delivery(sink, counts)
    broken = [Sample("stats_a", {}, 1000, 1.0), None, Sample("stats_b", {}, 1000, 1.0)]
    d.offer(FlushResult(samples=broken, events=[], dropped=0, lines=3, bad_lines=0))  # type: ignore[arg-type]
    await asyncio.sleep(0.01)
    d.offer(flush(2000))
    await d.drain(5)
    assert counts("dropped_total", reason="internal_error") == 3
    assert [s.timestamp_ms for s in sink.samples] == [2000, 2000]
    [line] = warnings(caplog)
    assert line.levelno == logging.ERROR and line.exc_info is not None

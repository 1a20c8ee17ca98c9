"""StatsD flushes on their way to the sink: batches, order, retries, bounds and what is counted.

The sink is :class:`tests.helpers.memsink.MemorySink` (the store's rules for samples), made to
fail a given number of writes; retry delays are a few milliseconds.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from prometheus_client import CollectorRegistry

from collectors._core.component import WriteResult
from collectors._core.errors import StoreUnavailableError
from collectors._core.model import LogRecord, Sample
from collectors._core.selfmetrics import ReceiverMetricFamilies, ReceiverMetrics
from collectors.receivers.statsd.aggregate import FlushResult
from collectors.receivers.statsd.config import StatsdSettings
from collectors.receivers.statsd.delivery import FlushDelivery
from collectors.receivers.statsd.protocol.events import parse_service_check
from tests.helpers.memsink import MemorySink

SETTINGS = StatsdSettings(
    tcp_listen=None,
    flush_interval_s=0.1,
    retry_base_s=0.001,
    write_retries=2,
    max_batch_samples=3,
    max_pending_flushes=2,
)


class FlakySink(MemorySink):
    """A MemorySink whose first ``failures`` writes find the store down."""

    def __init__(self, failures: int = 0) -> None:
        super().__init__()
        self.failures = failures

    async def write_samples(self, samples: list[Sample]) -> WriteResult:  # type: ignore[override]
        if self.failures > 0:
            self.failures -= 1
            raise StoreUnavailableError("store down")
        return await super().write_samples(samples)

    async def write_logs(self, records: list[LogRecord]) -> None:  # type: ignore[override]
        if self.failures > 0:
            self.failures -= 1
            raise StoreUnavailableError("store down")
        await super().write_logs(records)


class Counts:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.metrics = ReceiverMetrics(
            families=ReceiverMetricFamilies.create(self.registry), receiver="statsd"
        )

    def __call__(self, family: str, **labels: str) -> float:
        value = self.registry.get_sample_value(
            f"meshfed_receiver_{family}", {"receiver": "statsd", **labels}
        )
        return value or 0.0


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


async def test_a_flush_is_written_in_batches_and_counted() -> None:
    sink, counts = MemorySink(), Counts()
    d = delivery(sink, counts)
    assert d.offer(flush(1000, n=7))
    await d.drain(5)
    assert sink.batches == [3, 3, 1]
    assert counts("stored_total", signal="metrics") == 7
    assert counts("batch_latency_seconds_count") == 3
    assert counts("queue_depth") == 0


async def test_a_short_store_outage_is_retried() -> None:
    sink, counts = FlakySink(failures=2), Counts()
    d = delivery(sink, counts)
    d.offer(flush(1000))
    await d.drain(5)
    assert len(sink.samples) == 2
    assert counts("stored_total", signal="metrics") == 2
    assert counts("dropped_total", reason="store_unavailable") == 0


async def test_a_batch_still_refused_after_the_retries_is_dropped_and_counted() -> None:
    sink, counts = FlakySink(failures=3), Counts()  # 1 try + 2 retries
    d = delivery(sink, counts)
    d.offer(flush(1000, n=5))
    await d.drain(5)
    assert counts("dropped_total", reason="store_unavailable") == 3  # the first batch
    assert counts("stored_total", signal="metrics") == 2  # the second one got through
    assert sink.batches == [2]


async def test_flushes_reach_the_store_in_order_while_one_is_retried() -> None:
    sink, counts = FlakySink(failures=2), Counts()
    d = delivery(sink, counts)
    d.offer(flush(1000))
    d.offer(flush(2000))
    await d.drain(5)
    assert [s.timestamp_ms for s in sink.samples] == [1000, 1000, 2000, 2000]
    assert counts("rejected_total", reason="out_of_order") == 0
    assert counts("stored_total", signal="metrics") == 4


async def test_flushes_beyond_the_bound_are_dropped_and_counted() -> None:
    sink, counts = MemorySink(), Counts()
    sink.gate = asyncio.Event()  # the store hangs
    d = delivery(sink, counts)
    assert d.offer(flush(1000))
    await asyncio.sleep(0.01)  # the first flush is being written
    assert d.offer(flush(2000)) and d.offer(flush(3000))
    assert counts("queue_depth") == 2
    assert not d.offer(flush(4000, n=5))
    assert counts("dropped_total", reason="queue_full") == 5
    sink.gate.set()
    await d.drain(5)
    assert sorted({s.timestamp_ms for s in sink.samples}) == [1000, 2000, 3000]
    assert counts("queue_depth") == 0


async def test_what_shutdown_cannot_write_is_counted() -> None:
    sink, counts = MemorySink(), Counts()
    sink.available = False
    d = delivery(sink, counts, write_retries=100)
    d.offer(flush(1000, n=4))
    d.offer(flush(2000, n=2))
    await asyncio.sleep(0.01)
    await d.drain(0.05)
    assert counts("dropped_total", reason="shutdown") == 6
    assert counts("queue_depth") == 0
    assert sink.samples == []


async def test_service_checks_are_written_as_logs() -> None:
    sink, counts = FlakySink(failures=1), Counts()
    d = delivery(sink, counts)
    check = parse_service_check("_sc|db.check|2|#env:prod|m:down")
    d.offer(FlushResult(samples=[], events=[check], dropped=0, lines=1, bad_lines=0))
    await d.drain(5)
    [record] = sink.logs
    assert (record.tag, record.body, record.attributes["check.status"]) == (
        "statsd.service_check",
        "down",
        "CRITICAL",
    )
    assert record.resource == {"cluster": "c1"}
    assert counts("stored_total", signal="logs") == 1


async def test_an_unexpected_sink_error_is_counted_and_later_flushes_still_go() -> None:
    sink, counts = MemorySink(), Counts()
    d = delivery(sink, counts)
    broken = FlushResult(samples=[None], events=[], dropped=0, lines=1, bad_lines=0)  # type: ignore[list-item]
    d.offer(broken)
    d.offer(flush(2000))
    await d.drain(5)
    assert counts("dropped_total", reason="internal_error") == 1
    assert [s.timestamp_ms for s in sink.samples] == [2000, 2000]

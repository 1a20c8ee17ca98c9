"""Group commit: concurrent callers' small batches become one larger store write.

Each caller hands its records and awaits its own future; worker tasks take as many queued
records as fit in ``max_items`` (whole caller batches; a larger caller batch is split first),
write them in one store call and resolve every caller's future with its share of the result
— or with the same exception. While a write is in flight new records accumulate, so
batches grow exactly when the store is the bottleneck; ``linger_s`` optionally waits a
little for more. The queue is bounded in records: a caller that does not fit gets a
``QueueFullError`` (retryable) at once instead of waiting without bound.

``BatchCoalescer`` works on any sized batch type given how to cut and join it (columnar
``SeriesBatch`` es); ``Coalescer`` is the same for plain lists of records.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence, Sized
from dataclasses import dataclass
from typing import Generic, TypeVar

from collectors._core.errors import QueueFullError, ShuttingDownError
from collectors._core.selfmetrics import ReceiverMetrics
from collectors._kits.tasks import cancel_and_wait

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")
B = TypeVar("B", bound=Sized)


@dataclass(slots=True)
class _Entry(Generic[B, R]):
    items: B
    future: asyncio.Future[R]


class BatchCoalescer(Generic[B, R]):
    """A bounded queue of caller batches and ``workers`` tasks writing merged batches."""

    def __init__(
        self,
        *,
        signal: str,
        write: Callable[[B], Awaitable[R]],
        split: Callable[[R, list[int]], list[R]],
        combine: Callable[[list[R]], R],
        cut: Callable[[B, int], list[B]],
        join: Callable[[list[B]], B],
        max_items: int,
        max_queued_items: int,
        linger_s: float,
        workers: int,
        metrics: ReceiverMetrics,
    ) -> None:
        self._signal = signal
        self._write = write
        self._split = split
        self._combine = combine
        self._cut = cut
        self._join = join
        self._max_items = max_items
        self._max_queued = max_queued_items
        self._linger_s = linger_s
        self._workers_n = workers
        self._metrics = metrics
        self._queue: deque[_Entry[B, R]] = deque()
        self._queued = 0
        self._in_write = 0
        self._has_items = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False

    @property
    def queued(self) -> int:
        """Records waiting for a worker."""
        return self._queued

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._worker(), name=f"pipeline-{self._signal}-{i}")
                for i in range(self._workers_n)
            ]

    async def submit(self, items: B) -> R:
        """Queue ``items`` and return their share of the store's result once written."""
        if self._closed:
            raise ShuttingDownError("the collector is shutting down; retry later")
        if not items:
            return self._combine([])
        if self._queued + len(items) > self._max_queued:
            self._metrics.rejected("queue_full", len(items))
            raise QueueFullError(
                f"pipeline queue full ({self._queued} {self._signal} queued); retry later"
            )
        loop = asyncio.get_running_loop()
        entries = [
            _Entry[B, R](piece, loop.create_future()) for piece in self._cut(items, self._max_items)
        ]
        self._queue.extend(entries)
        self._queued += len(items)
        self._metrics.set_queue_depth(self._queued)
        self._has_items.set()
        results = [await e.future for e in entries]
        return results[0] if len(results) == 1 else self._combine(results)

    async def _worker(self) -> None:
        while True:
            await self._has_items.wait()
            if self._linger_s > 0 and self._queued < self._max_items and not self._closed:
                await asyncio.sleep(self._linger_s)
            batch = self._take()
            if not batch:
                self._has_items.clear()
                continue
            await self._flush(batch)

    def _take(self) -> list[_Entry[B, R]]:
        batch: list[_Entry[B, R]] = []
        size = 0
        while self._queue and size + len(self._queue[0].items) <= self._max_items:
            entry = self._queue.popleft()
            batch.append(entry)
            size += len(entry.items)
        self._queued -= size
        self._in_write += size
        if not self._queue:
            self._has_items.clear()
        self._metrics.set_queue_depth(self._queued)
        return batch

    async def _flush(self, batch: list[_Entry[B, R]]) -> None:
        merged = self._join([entry.items for entry in batch])
        started = time.perf_counter()
        try:
            result = await self._write(merged)
        except asyncio.CancelledError:
            for entry in batch:
                if not entry.future.done():
                    entry.future.set_exception(ShuttingDownError("write cancelled by shutdown"))
            raise
        except Exception as e:
            for entry in batch:
                if not entry.future.done():
                    entry.future.set_exception(e)
            # retrieved by the callers; do not log per batch at error level
            log.debug("%s write of %d records failed: %s", self._signal, len(merged), e)
        else:
            self._metrics.observe_batch(time.perf_counter() - started)
            shares = self._split(result, [len(e.items) for e in batch])
            for entry, share in zip(batch, shares, strict=True):
                if not entry.future.done():
                    entry.future.set_result(share)
        finally:
            self._in_write -= len(merged)

    async def shutdown(self, *, timeout_s: float) -> None:
        """Refuse new records, write what is queued (within ``timeout_s``), stop workers."""
        self._closed = True
        deadline = time.monotonic() + timeout_s
        while (self._queued or self._in_write) and time.monotonic() < deadline:
            if self._queued:
                self._has_items.set()
            await asyncio.sleep(0.01)
        await cancel_and_wait(self._tasks)
        self._tasks = []
        while self._queue:  # left after the timeout: tell the callers to retry
            entry = self._queue.popleft()
            if not entry.future.done():
                entry.future.set_exception(ShuttingDownError("not written before shutdown"))
        self._queued = 0


class Coalescer(BatchCoalescer[list[T], R]):
    """A ``BatchCoalescer`` of plain record lists (a caller may pass any sequence)."""

    def __init__(
        self,
        *,
        signal: str,
        write: Callable[[list[T]], Awaitable[R]],
        split: Callable[[R, list[int]], list[R]],
        combine: Callable[[list[R]], R],
        max_items: int,
        max_queued_items: int,
        linger_s: float,
        workers: int,
        metrics: ReceiverMetrics,
    ) -> None:
        super().__init__(
            signal=signal,
            write=write,
            split=split,
            combine=combine,
            cut=_cut_list,
            join=_join_lists,
            max_items=max_items,
            max_queued_items=max_queued_items,
            linger_s=linger_s,
            workers=workers,
            metrics=metrics,
        )

    async def submit(self, items: Sequence[T]) -> R:
        """Queue ``items`` and return their share of the store's result once written."""
        return await super().submit(list(items))


def _cut_list(items: list[T], size: int) -> list[list[T]]:
    if len(items) <= size:
        return [items]
    return [items[i : i + size] for i in range(0, len(items), size)]


def _join_lists(lists: list[list[T]]) -> list[T]:
    return lists[0] if len(lists) == 1 else [item for items in lists for item in items]

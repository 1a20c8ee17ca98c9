"""Live updates: one gRPC ``WatchEvents`` stream fanned out to every open page as SSE.

One watch per console process (not per browser tab) keeps the federator's stream count at one.
Each subscriber has a bounded queue; a tab that reads too slowly loses the oldest messages
(the page refetches on any message, so a lost one costs nothing but a stale second). The watch
reconnects with a capped backoff and tells the pages when it is down, so they can say so.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from meshfed.console.sources import FederatorSource, SourceError
from meshfed.console.views import event_json

log = logging.getLogger(__name__)

SUBSCRIBER_QUEUE = 256
BACKOFF_S = (0.5, 1.0, 2.0, 5.0)


class Broadcaster:
    """Owns the watch task (``start``/``shutdown``) and the subscribers' queues."""

    def __init__(
        self, source: FederatorSource, *, sleep: Callable[[float], Any] = asyncio.sleep
    ) -> None:
        self._source = source
        self._sleep = sleep
        self._queues: set[asyncio.Queue[dict[str, Any]]] = set()
        self._task: asyncio.Task[None] | None = None
        self.connected = True
        """False while the watch is down (after an error, until it reconnects)."""

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="console-watch")

    async def shutdown(self) -> None:
        if self._task is not None:
            task, self._task = self._task, None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def publish(self, message: dict[str, Any]) -> None:
        for queue in list(self._queues):
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(message)

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                async for event in self._source.watch():
                    if not self.connected:
                        self.connected = True
                        self.publish({"type": "watch", "connected": True})
                    failures = 0
                    self.publish({"type": "event", "event": event_json(event)})
            except SourceError as error:
                log.warning("federator watch: %s", error)
                if self.connected or failures == 0:
                    self.publish({"type": "watch", "connected": False, "error": str(error)})
                self.connected = False
            await self._sleep(BACKOFF_S[min(failures, len(BACKOFF_S) - 1)])
            failures += 1

    async def stream(self, keepalive_s: float) -> AsyncIterator[str]:
        """SSE text for one subscriber: a hello, then messages, comments as keep-alives."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(SUBSCRIBER_QUEUE)
        self._queues.add(queue)
        try:
            yield f"data: {json.dumps({'type': 'hello', 'connected': self.connected})}\n\n"
            while True:
                try:
                    message = await asyncio.wait_for(queue.get(), keepalive_s)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                yield f"data: {json.dumps(message)}\n\n"
        finally:
            self._queues.discard(queue)

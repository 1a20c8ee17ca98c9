"""Live updates: the gRPC ``WatchEvents`` and ``WatchDrills`` streams fanned out to every open
page as SSE.

One watch of each per console process (not per browser tab) keeps the federator's stream
count at two. A federator without a home cluster has no drills (FAILED_PRECONDITION): the
drill watch then stops for good and the pages are told why.
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

from federator.api._generated.meshfed.v1 import federation_pb2 as pb
from meshfed.console.sources import FederatorSource, SourceError
from meshfed.console.views import drill_json, event_json

log = logging.getLogger(__name__)

SUBSCRIBER_QUEUE = 256
BACKOFF_S = (0.5, 1.0, 2.0, 5.0)
FINAL_DRILL_CODES = ("FAILED_PRECONDITION", "UNIMPLEMENTED")
"""Answers that will not change by retrying: no home cluster, or a federator without drills."""
DRILL_CHANGES = {
    pb.DRILL_EVENT_TYPE_ADDED: "added",
    pb.DRILL_EVENT_TYPE_MODIFIED: "modified",
    pb.DRILL_EVENT_TYPE_DELETED: "deleted",
}


class Broadcaster:
    """Owns the watch task (``start``/``shutdown``) and the subscribers' queues."""

    def __init__(
        self, source: FederatorSource, *, sleep: Callable[[float], Any] = asyncio.sleep
    ) -> None:
        self._source = source
        self._sleep = sleep
        self._queues: set[asyncio.Queue[dict[str, Any]]] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self.connected = True
        """False while the watch is down (after an error, until it reconnects)."""
        self.drills_error = ""
        """Why the federator serves no drills (no home cluster); empty while it does."""

    async def start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._run(), name="console-watch"),
                asyncio.create_task(self._run_drills(), name="console-watch-drills"),
            ]

    async def shutdown(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
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

    async def _run_drills(self) -> None:
        failures = 0
        while True:
            try:
                async for event in self._source.watch_drills():
                    failures = 0
                    change = DRILL_CHANGES.get(event.type, "")
                    self.publish(
                        {"type": "drill", "change": change, "drill": drill_json(event.drill)}
                    )
            except SourceError as error:
                if error.code in FINAL_DRILL_CODES:
                    self.drills_error = str(error)
                    self.publish({"type": "drills", "available": False, "error": str(error)})
                    return
                log.warning("federator drill watch: %s", error)
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

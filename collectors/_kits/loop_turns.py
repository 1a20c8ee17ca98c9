"""Taking turns on the event loop: a long synchronous step lets the work it feeds start first.

Why: a receiver decodes a request on the event loop (milliseconds for thousands of new
series) and then hands the batch to the pipeline, whose writer task sends it to Redis. When
several requests arrive together, their handlers are all ready to run; the loop runs them
in order, so every decode ran before any writer woke up, and Redis sat idle while the
collector decoded (the collector and Redis took turns instead of overlapping; see
docs/adr/0020-decodes-take-turns-with-writes.md for the timeline and figures).

``LoopTurns.run`` runs one step at a time and passes the turn on *after* the callbacks the
step's caller scheduled once the step returned (a writer woken by the batch it queued):
the release is a ``call_soon`` callback, queued before the caller goes on, so the next
waiter is woken only when that callback runs, behind what the caller queued meanwhile.
Both asyncio's loop and uvloop run ready callbacks first in, first out
(tests/unit/collectors/_kits/test_loop_turns.py runs on both). When no writer is idle
nothing is queued, and the next step starts at once: turns only reorder, they never wait
for a write to finish.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class LoopTurns:
    """Synchronous steps run one at a time, each turn passed on behind its caller's wake-ups."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()

    async def run(self, step: Callable[[], T]) -> T:
        """``step()`` once it is this caller's turn; the caller should queue the work the
        result feeds before its next ``await`` (that work then runs before the next step)."""
        await self._lock.acquire()
        try:
            return step()
        finally:
            asyncio.get_running_loop().call_soon(self._lock.release)

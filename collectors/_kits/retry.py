"""Retrying a store write with jittered exponential backoff: one formula for the collectors.

Only senders without an acknowledgement need it (StatsD: nobody resends a flush the store
refused); receivers with one answer "retry later" and let the sender back off. The jitter
(±20 %) keeps collectors that failed together from retrying in lockstep.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from collectors._core.errors import RetryableError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays between attempts: ``min(cap_s, base_s * 2**n) * uniform(0.8, 1.2)``."""

    base_s: float
    """The first delay (before jitter)."""
    cap_s: float
    """The longest delay (before jitter)."""

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (0 = the first call)."""
        exponent = min(attempt, 64)  # 2.0 ** 1024 overflows; the cap has long applied by then
        return min(self.cap_s, self.base_s * 2.0**exponent) * random.uniform(0.8, 1.2)


async def retry(
    call: Callable[[], Awaitable[T]],
    *,
    retries: int,
    backoff: Backoff,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> T:
    """``await call()``; after a ``RetryableError`` wait ``backoff.delay(n)`` and call again,
    at most ``retries`` more times. The last ``RetryableError`` propagates, and any other
    exception (``PermanentError``: retrying cannot help) propagates at once."""
    for attempt in range(retries):
        try:
            return await call()
        except RetryableError:
            await sleep(backoff.delay(attempt))
    return await call()

"""Jittered exponential backoff, shared by watches (reconnect) and the work queue (requeue).

``delay = min(cap, base * 2**n) * uniform(1 - jitter, 1 + jitter)``: the jitter spreads
reconnects of many watches after an apiserver restart so they do not arrive in lock-step.
Pure (the random source is injectable for tests).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class BackoffSettings:
    """Exponential backoff parameters (seconds)."""

    base: float = 0.2
    """Delay after the first failure."""
    cap: float = 30.0
    """Largest delay before jitter."""
    jitter: float = 0.2
    """Relative jitter: the delay is multiplied by uniform(1 - jitter, 1 + jitter)."""

    def delay(
        self, failures: int, *, uniform: Callable[[float, float], float] = random.uniform
    ) -> float:
        """The delay after ``failures`` consecutive failures (``failures`` >= 1)."""
        exponent = max(0, min(failures - 1, 30))
        raw = min(self.cap, self.base * 2**exponent)
        return float(raw * uniform(1.0 - self.jitter, 1.0 + self.jitter))


@dataclass(slots=True)
class Backoff:
    """Failure counter + settings: ``next_delay()`` after a failure, ``reset()`` after success."""

    settings: BackoffSettings = field(default_factory=BackoffSettings)
    failures: int = 0

    def next_delay(self) -> float:
        self.failures += 1
        return self.settings.delay(self.failures)

    def reset(self) -> None:
        self.failures = 0

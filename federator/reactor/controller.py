"""The controller: the work queue, the workers, and every decision about a reconcile's result.

Keys come in through ``add`` (from the sources); ``workers`` tasks take them from one
de-duplicating, bounded ``WorkQueue`` (a key is never reconciled twice at once) and call
``reconcile(key)``. What follows a reconcile is decided here and nowhere else, as
controller-runtime keeps it in its ``reconcileHandler`` - the reconciler only reports how it
went (``federator.reconcile.reconciler.Result``) and ``next_step`` turns that into a step:

- success -> forget the key's failures;
- a transient failure -> requeue with the key's jittered exponential backoff, at least the
  server's Retry-After;
- a refusal for good -> reported (the reconciler made it a status condition), not retried
  hot; if RBAC denied a verb, retried after ``denied_retry_seconds`` (at most the resync
  period), since RBAC may be fixed any time;
- a crash (reconcile raised: a bug) -> logged with its traceback and requeued with backoff,
  so a bug costs one key's progress, not a worker.

Every step is counted in ``reconciles_total{result}``; the queue's depth and drops are read by
the metrics exposition itself. The time a key's change was first observed rides along with the
key (kept across requeues) for the propagation-latency histogram.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Protocol

from federator.core.model import ServiceKey
from federator.errors import QueueShutdown
from federator.lifecycle import cancel_and_wait
from federator.metrics import FederatorMetrics
from federator.reactor.workqueue import WorkQueue
from federator.reconcile.outcome import Result

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ControllerSettings:
    """The workers and their queue."""

    workers: int = 4
    """Concurrent reconciles (different keys; one key is never reconciled twice at once)."""
    background_workers: int = 2
    """Of those, at most this many reconcile keys offered by a full pass (resync, trust,
    takeover) at once: the others stay free for changed keys."""
    queue_max: int = 100_000
    """Work queue bound (keys); a key refused when full is picked up by the next resync."""
    denied_retry_seconds: float = 60.0
    """Requeue delay of a key after RBAC denied a verb (capped by the resync period)."""


class Reconcile(Protocol):
    """What the controller drives (``federator.reconcile.reconciler.Reconciler``)."""

    async def reconcile(self, key: ServiceKey, *, observed_at: float | None = None) -> Result: ...


SUCCESS, REQUEUE, ERROR, CRASH = "success", "requeue", "error", "crash"
"""The ``result`` label values of ``reconciles_total``."""


@dataclass(frozen=True, slots=True)
class Step:
    """What happens to a key after its reconcile."""

    outcome: str
    """``SUCCESS``, ``REQUEUE`` (transient failure), ``ERROR`` (refused) or ``CRASH``."""
    requeue: bool = False
    """Queue the key again after its backoff (otherwise its failure count is reset)."""
    at_least: float = 0.0
    """The requeue waits at least this long (Retry-After, or the slow retry of a Forbidden)."""


def next_step(result: Result, *, denied_retry_seconds: float) -> Step:
    """The step after a reconcile that returned ``result`` (pure; see the module docstring)."""
    if result.retryable is not None:
        return Step(REQUEUE, requeue=True, at_least=result.retry_after)
    if result.refused is not None:
        if result.forbidden:
            return Step(ERROR, requeue=True, at_least=denied_retry_seconds)
        return Step(ERROR)
    return Step(SUCCESS)


class Controller:
    """See the module docstring. ``start()`` returns at once; ``shutdown()`` is idempotent."""

    def __init__(
        self,
        *,
        reconciler: Reconcile,
        metrics: FederatorMetrics,
        resync_period_seconds: float,
        settings: ControllerSettings | None = None,
    ) -> None:
        self.settings = settings or ControllerSettings()
        self._reconciler = reconciler
        self._metrics = metrics
        self._denied_retry = min(self.settings.denied_retry_seconds, resync_period_seconds)
        self.queue: WorkQueue[ServiceKey] = WorkQueue(
            max_size=self.settings.queue_max,
            background_limit=max(1, min(self.settings.background_workers, self.settings.workers)),
        )
        self._observed: dict[ServiceKey, float] = {}
        self._workers: list[asyncio.Task[None]] = []
        self._stopped = False
        metrics.queue_depth.set_function(lambda: len(self.queue))
        metrics.queue_active.set_function(lambda: self.queue.active)
        metrics.queue_retrying.set_function(lambda: self.queue.retrying)
        metrics.queue_drops.set_function(lambda: self.queue.drops)

    def add(
        self, key: ServiceKey, *, observed_at: float | None = None, background: bool = False
    ) -> bool:
        """Queue ``key``; ``observed_at`` (monotonic) is when a source saw its change, if one
        did; ``background``: offered by a full pass, not a change (it waits behind changed
        keys). False if the queue refused it (full: counted as a drop; or shut down)."""
        if observed_at is not None:
            self._observed.setdefault(key, observed_at)
        return self.queue.add(key, background=background)

    @property
    def idle(self) -> bool:
        """Nothing queued, being reconciled or waiting for a requeue."""
        return self.queue.idle

    async def start(self) -> None:
        if self._workers or self._stopped:
            return
        self._workers = [
            asyncio.create_task(self._work(), name=f"worker-{i}")
            for i in range(self.settings.workers)
        ]

    async def shutdown(self) -> None:
        """Stop handing out keys, cancel the workers and wait for them (idempotent)."""
        self._stopped = True
        self.queue.shutdown()
        workers, self._workers = self._workers, []
        await cancel_and_wait(workers)

    async def _work(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except QueueShutdown:
                return
            await self.process(key)

    async def process(self, key: ServiceKey) -> Step:
        """Reconcile one key taken from the queue and carry out the step that follows."""
        observed = self._observed.pop(key, None)
        try:
            result = await self._reconciler.reconcile(key, observed_at=observed)
        except Exception:  # a bug must not kill the worker; retry with backoff
            log.exception("reconcile %s crashed", key)
            step = Step(CRASH, requeue=True)
        else:
            step = next_step(result, denied_retry_seconds=self._denied_retry)
            if result.refused is not None:
                log.warning("reconcile %s refused: %s", key, result.refused)
        finally:
            self.queue.done(key)
        self._metrics.reconciles.labels(result=step.outcome).inc()
        if step.requeue:
            if observed is not None:
                self._observed.setdefault(key, observed)
            self.queue.requeue(key, at_least=step.at_least)
        else:
            self.queue.forget(key)
        return step

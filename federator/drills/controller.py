"""The drill controller: the leader drives every ``Drill`` object with the pure journal.

Keys, not events: the controller re-lists the Drill objects and re-reads the freeze ConfigMap
every ``drills.pollInterval`` and starts one worker per drill that is not terminal (at most
``drills.workers``). A worker loops: read the object, ``next_action`` -> do the I/O
(``DrillSteps``) -> ``record`` -> write the status (``resourceVersion``-fenced PUT of the
``status`` subresource) before the next action. Nothing about a run lives only in memory,
except the pre-drill snapshot (drift in the report) and which clusters' VirtualServices are
already gone during a rollback.

Only the leader runs drills: the loop does nothing while ``leading()`` is false, and each
write checks it again (member clients are fenced by the Lease too). A replica that becomes
leader - after a takeover or a restart - calls ``recover`` once on every drill it finds, so a
run that was in progress is rolled back and verified (the crash path).

The running drills' overlays (drain, subsets) are published through ``overlays()``, which
the reconciler reads at every reconcile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from federator.core.config_drills import DrillSettings
from federator.core.drills.drain import drained_clusters
from federator.core.drills.journal import (
    TERMINAL,
    Action,
    ActionKind,
    Event,
    EventType,
    ExitReason,
    Journal,
    Phase,
    new_journal,
    next_action,
    record,
    recover,
)
from federator.core.drills.journal_codec import load_status, to_status
from federator.core.drills.parse import parse_drill
from federator.core.drills.retry import Failing, after_failure, gave_up
from federator.core.drills.spec import DrillSpec
from federator.core.model import ClusterId
from federator.drills import objects
from federator.drills.steps import DrillSteps, describe
from federator.errors import DrillSpecError, FederatorError, NotLeaderError, RetryableError
from federator.kube.client import KubeClient
from federator.lifecycle import cancel_and_wait
from federator.metrics import FederatorMetrics
from federator.reconcile.drill_overlay import DrillOverlay

log = logging.getLogger(__name__)

ERROR_RETRY_SECONDS = 2.0
"""Pause after a failed action before it is tried again (rollback and verification always;
other actions while ``drills.transientRetry`` allows, see ``core.drills.retry``)."""


class DrillController:
    """See the module docstring."""

    def __init__(
        self,
        *,
        namespace: str,
        home: Callable[[], KubeClient | None],
        steps: DrillSteps,
        leading: Callable[[], bool],
        metrics: FederatorMetrics,
        settings: DrillSettings,
    ) -> None:
        self._namespace = settings.namespace or namespace
        self._home = home
        self._steps = steps
        self._leading = leading
        self._metrics = metrics
        self._settings = settings
        self.frozen = False
        self._was_leading = False
        self._recovered: set[str] = set()
        self._running: dict[str, tuple[DrillSpec, Journal]] = {}
        self._vs_removed: dict[str, set[ClusterId]] = {}
        self._failing: dict[str, Failing] = {}
        """Per drill, the action that keeps failing with retryable errors (in memory: a new
        leader starts with a rollback anyway)."""
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._loop: asyncio.Task[None] | None = None
        self._stopped = False
        metrics.drills_running.set_function(
            lambda: sum(1 for _, j in self._running.values() if not j.terminal)
        )

    # -- the reconciler's hook ------------------------------------------------------------

    def overlays(self) -> tuple[DrillOverlay, ...]:
        out = []
        for name, (spec, journal) in self._running.items():
            where = frozenset(journal.targets)
            if journal.phase is Phase.RUNNING:
                step = journal.step
                drained = drained_clusters(spec, step, self._steps.by_region) if step >= 0 else {}
                out.append(DrillOverlay(spec, where, drained))
            elif journal.phase is Phase.ROLLING_BACK:
                left = where - self._vs_removed.get(name, set())
                if left:
                    out.append(DrillOverlay(spec, left))
        return tuple(out)

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        if self._loop is None and not self._stopped:
            self._loop = asyncio.create_task(self._run(), name="drills")

    async def shutdown(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        tasks = [t for t in (self._loop, *self._workers.values()) if t is not None]
        await cancel_and_wait(tasks)
        self._workers.clear()

    @property
    def active(self) -> tuple[str, ...]:
        """Drills with a worker now."""
        return tuple(sorted(self._workers))

    async def _run(self) -> None:
        while True:
            try:
                await self._pass()
            except FederatorError as exc:
                log.warning("drills: listing failed, retrying: %s", exc)
            except Exception:
                log.exception("drills: unexpected error in the drill loop")
            await asyncio.sleep(self._settings.poll_interval_seconds)

    async def _pass(self) -> None:
        home = self._home()
        if home is None or not self._leading():
            if self._was_leading:
                await self._step_down()
            return
        if not self._was_leading:
            self._was_leading = True
            self._recovered = set()  # a new term: recover every drill found once
        self.frozen = await objects.frozen(home, self._namespace)
        self._metrics.drills_frozen.set(1 if self.frozen else 0)
        for drill in await objects.list_drills(home, self._namespace):
            name = drill["metadata"]["name"]
            phase = (drill.get("status") or {}).get("phase")
            if phase in {p.value for p in TERMINAL} or name in self._workers:
                continue
            if len(self._workers) >= self._settings.workers:
                break
            task = asyncio.create_task(self._work(name), name=f"drill-{name}")
            self._workers[name] = task
            task.add_done_callback(self._forget(name))

    def _forget(self, name: str) -> Callable[[asyncio.Task[None]], None]:
        def done(task: asyncio.Task[None]) -> None:
            if self._workers.get(name) is task:
                del self._workers[name]

        return done

    async def _step_down(self) -> None:
        self._was_leading = False
        workers = list(self._workers.values())
        self._workers.clear()
        await cancel_and_wait(workers)
        self._running.clear()
        self._vs_removed.clear()

    # -- one drill ------------------------------------------------------------------------

    async def _work(self, name: str) -> None:
        try:
            while not self._stopped and self._leading():
                try:
                    delay = await self._iterate(name)
                except NotLeaderError:
                    raise
                except FederatorError as exc:  # a failed read or status write: re-read later
                    log.warning("drill %s: %s; retrying", name, exc)
                    delay = ERROR_RETRY_SECONDS
                if delay is None:
                    return
                if delay > 0:
                    await asyncio.sleep(delay)
        except NotLeaderError:
            log.info("drill %s: this replica stopped leading; the new leader recovers it", name)
        except Exception:
            log.exception("drill %s: worker failed; the next pass restarts it", name)
        finally:
            self._running.pop(name, None)
            self._failing.pop(name, None)

    async def _iterate(self, name: str) -> float | None:
        """One action of drill ``name``; the pause before the next (None: the worker ends)."""
        home = self._home()
        if home is None:
            return self._settings.poll_interval_seconds
        drill = await objects.get_drill(home, self._namespace, name)
        if drill is None:
            await self._deleted(name)
            return None
        now = time.time()
        try:
            spec = parse_drill(drill)
        except DrillSpecError as exc:
            await self._refuse(home, drill, str(exc), now)
            return None
        journal = load_status(name, drill.get("status"), targets=self._steps.targets(spec), now=now)
        if name not in self._recovered:
            self._recovered.add(name)
            recovered = recover(journal, spec, now=now)
            if recovered is not journal:
                log.info("drill %s: found in %s, rolling back", name, journal.phase.value)
                await self._write(home, drill, journal, recovered)
                return 0.0
        self._running[name] = (spec, journal)
        action = next_action(journal, spec, now=now, frozen=self.frozen)
        if action.kind is ActionKind.DONE:
            return None
        if action.kind is ActionKind.WAIT:
            until = action.until if action.until is not None else now
            return max(0.0, min(until - now, self._settings.poll_interval_seconds))
        try:
            events = await self._perform(spec, journal, action, now)
        except NotLeaderError:
            raise
        except FederatorError as exc:
            if journal.phase in (Phase.ROLLING_BACK, Phase.VERIFYING):
                log.warning("drill %s: %s failed, retrying: %s", name, action.kind.value, exc)
                return ERROR_RETRY_SECONDS
            events = self._failed(name, action, exc)
            if not events:
                return ERROR_RETRY_SECONDS
        else:
            failing = self._failing.get(name)
            if failing is not None and (failing.kind, failing.step) == (action.kind, action.step):
                del self._failing[name]
        updated = journal
        for event in events:
            updated = record(updated, spec, event)
        if updated is not journal:
            await self._write(home, drill, journal, updated)
            self._running[name] = (spec, updated)
            self._after(journal, updated)
        return 0.0

    def _failed(self, name: str, action: Action, exc: FederatorError) -> list[Event]:
        """No events (try ``action`` again) or the ``Exit(Error)`` that ends the run."""
        now = time.time()
        failing, again = after_failure(
            self._failing.get(name),
            action,
            retryable=isinstance(exc, RetryableError),
            now=now,
            budget_s=self._settings.transient_retry_seconds,
        )
        if again:
            self._failing[name] = failing
            self._metrics.drill_action_retries.labels(action=action.kind.value).inc()
            log.warning(
                "drill %s: %s failed (attempt %d), retrying: %s",
                name, action.kind.value, failing.attempts, exc,
            )  # fmt: skip
            return []
        self._failing.pop(name, None)
        message = describe(exc) + gave_up(failing, now)
        return [Event(EventType.EXIT, at=now, reason=ExitReason.ERROR, message=message)]

    async def _perform(
        self, spec: DrillSpec, journal: Journal, action: Action, now: float
    ) -> list[Event]:
        steps = self._steps
        match action.kind:
            case ActionKind.START:
                return [Event(EventType.STARTED, at=now)]
            case ActionKind.CHECK_PRECONDITIONS:
                return [await steps.preconditions(spec, frozen=self.frozen, now=now)]
            case ActionKind.START_STEP:
                if action.step == 0:
                    await steps.snapshot(spec)
                return [Event(EventType.STEP_STARTED, at=time.time(), step=action.step)]
            case ActionKind.APPLY_STEP:
                assert action.step is not None
                return await steps.apply_step(spec, journal, action.step, action.clusters)
            case ActionKind.EVALUATE_GUARDS:
                return await steps.evaluate(spec, action.guards)
            case ActionKind.EXIT:
                return [Event(EventType.EXIT, at=now, reason=action.reason, message=_why(action))]
            case ActionKind.ROLL_BACK:
                removed = self._vs_removed.setdefault(spec.name, set())
                for cluster in action.clusters:
                    await steps.remove_virtual_services(spec, cluster)
                    removed.add(cluster)
                await steps.reconcile(spec)  # the overlay is gone in these clusters now
                at = time.time()
                return [
                    Event(EventType.ROLLBACK_APPLIED, at=at, cluster=c) for c in action.clusters
                ]
            case ActionKind.VERIFY:
                return [await steps.verify(spec)]
        return []

    def _after(self, before: Journal, after: Journal) -> None:
        """Metrics of a transition; forget per-run memory at the end."""
        if after.phase is Phase.VERIFYING and before.phase is Phase.ROLLING_BACK:
            exit_at = next((e.at for e in reversed(after.events) if e.type is EventType.EXIT), None)
            if after.reason is ExitReason.BREACH and exit_at is not None:
                self._metrics.drill_breach_to_rollback.observe(max(0.0, time.time() - exit_at))
        if after.terminal and not before.terminal:
            self._metrics.drills_total.labels(result=after.phase.value).inc()
            self._vs_removed.pop(after.drill, None)
            self._steps.snapshots.pop(after.drill, None)
            log.info("drill %s: %s (%s)", after.drill, after.phase.value, after.reason)

    async def _write(
        self, home: KubeClient, drill: dict[str, Any], before: Journal, after: Journal
    ) -> None:
        """Write ``after`` as the status (a 409 - changed meanwhile - raises: re-read)."""
        if not self._leading():
            raise NotLeaderError(f"status of drill {after.drill}: this replica stopped leading")
        await objects.write_status(home, drill, to_status(after))

    async def _refuse(
        self, home: KubeClient, drill: dict[str, Any], message: str, now: float
    ) -> None:
        """A spec the parser rejects: ``Refused`` with the field's path in the message."""
        name = drill["metadata"]["name"]
        status = drill.get("status") or {}
        if status.get("phase") in {p.value for p in TERMINAL}:
            return
        empty = DrillSpec(name=name, services=(), steps=(), ttl_seconds=0.0)
        journal = new_journal(name, ())
        exit_event = Event(EventType.EXIT, at=now, reason=ExitReason.REFUSED, message=message)
        refused = record(journal, empty, exit_event)
        refused = record(
            refused,
            empty,
            Event(EventType.VERIFIED, at=now, holds=True, message="nothing was applied"),
        )
        await self._write(home, drill, journal, refused)
        self._after(journal, refused)

    async def _deleted(self, name: str) -> None:
        """The Drill object is gone mid-run: remove what it left (best effort, idempotent)."""
        held = self._running.pop(name, None)
        if held is None:
            return
        spec, journal = held
        for cluster in journal.targets:
            with contextlib.suppress(FederatorError):
                await self._steps.remove_virtual_services(spec, cluster)
        with contextlib.suppress(FederatorError):
            await self._steps.reconcile(spec)


def _why(action: Action) -> str:
    return {
        ExitReason.HALT: "spec.halt is true",
        ExitReason.FREEZE: f"drills are frozen (ConfigMap {objects.FREEZE_CONFIGMAP})",
        ExitReason.TTL: "spec.ttl is over",
        ExitReason.COMPLETED: "every step ran",
    }.get(action.reason or ExitReason.ERROR, "")

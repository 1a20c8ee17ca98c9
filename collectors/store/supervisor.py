"""Supervision of the embedded Redis: restart it on its own data when its process dies or
stops answering.

Why: the embedded server is a child process, and a child can die on its own (the kernel's
OOM killer, a stray ``kill``). Without a supervisor the collector would answer 503 forever,
while ``/-/healthy`` still said 200, so neither the collector nor a liveness probe would
bring the store back. Redis keeps everything it acknowledged in its AOF (written before the
reply), so starting a new server on the same directory restores every acknowledged write;
senders get retryable answers meanwhile and their retries succeed once it is back.

The policy is pure (:class:`RestartState`, driven by the time passed in): the first restart
is immediate, each further failed attempt doubles the wait up to a cap, and a server that
dies again soon after a restart counts as a failed attempt, so a crash loop backs off too.
After ``give_up_after`` consecutive failures the store is reported unrecoverable
(``/-/healthy`` fails, so a liveness probe restarts the pod) while attempts go on at the
capped interval: a later success makes it healthy again. An external Redis is not
supervised: it is the operator's to run, and the client reconnects on its own.

A server that is alive but answers nothing (stopped with SIGSTOP, stuck on a dead disk)
would never be restarted by watching its process alone, and every write would wait for its
timeout. So the supervisor also PINGs it (``hang_check_interval_s``); after ``hang_after``
PINGs in a row unanswered within ``hang_timeout_s`` it kills the process (SIGKILL, which
also ends a stopped process), and the restart above follows, counted as ``hung``. Killing
loses nothing acknowledged: the AOF has every acknowledged write before its reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from collectors._core.errors import ConfigError, StoreUnavailableError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """How often the process is checked and how restarts back off."""

    check_interval_s: float = 0.2
    """How often the server process is checked (a ``waitpid`` without blocking: cheap)."""
    initial_backoff_s: float = 0.5
    """Wait before the second attempt; the first restart after a death is immediate."""
    max_backoff_s: float = 10.0
    """Cap of the doubling wait between attempts."""
    give_up_after: int = 5
    """Consecutive failed attempts after which the store is reported unrecoverable."""
    stable_after_s: float = 30.0
    """A restarted server that dies within this time counts as a failed attempt."""
    hang_check_interval_s: float = 5.0
    """How often a running server is PINGed."""
    hang_timeout_s: float = 5.0
    """How long a PING may wait for its answer."""
    hang_after: int = 3
    """Consecutive unanswered PINGs after which the server is killed and restarted (with
    the defaults: a server that answers nothing for ~30 s)."""

    def validate(self) -> None:
        names = (
            "check_interval_s",
            "initial_backoff_s",
            "max_backoff_s",
            "stable_after_s",
            "hang_check_interval_s",
            "hang_timeout_s",
        )
        for name in names:
            if getattr(self, name) <= 0:
                raise ConfigError(f"RestartPolicy.{name} must be > 0")
        if self.max_backoff_s < self.initial_backoff_s:
            raise ConfigError("RestartPolicy.max_backoff_s must be >= initial_backoff_s")
        if self.give_up_after < 1:
            raise ConfigError("RestartPolicy.give_up_after must be >= 1")
        if self.hang_after < 1:
            raise ConfigError("RestartPolicy.hang_after must be >= 1")


def death_reason(exit_status: int) -> str:
    """``killed`` (by a signal, as the OOM killer does) or ``exited`` (it stopped itself)."""
    return "killed" if exit_status < 0 else "exited"


def describe_exit(exit_status: int) -> str:
    """``killed by SIGKILL`` or ``exited with status 1`` (Popen's negative = signal)."""
    if exit_status < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-exit_status).name}"
        return f"killed by signal {-exit_status}"
    return f"exited with status {exit_status}"


@dataclass
class RestartState:
    """The supervisor's memory, updated with the time of each event (pure: no I/O)."""

    policy: RestartPolicy
    failures: int = 0
    """Consecutive failed attempts (a quick re-death after a restart counts as one)."""
    restarts: Counter[str] = field(default_factory=Counter)
    """Successful restarts by the reason of the death they answered."""
    failed_attempts: int = 0
    """Every failed attempt, ever (a counter)."""
    up_since: float | None = None
    """When the last restart succeeded (``None``: the server is the one started first)."""
    up: bool = True
    last_error: str = ""
    unanswered: int = 0
    """Consecutive PINGs the running server left unanswered."""

    def pinged(self, answered: bool) -> bool:
        """One PING's outcome; True when the server is to be killed as hung."""
        self.unanswered = 0 if answered else self.unanswered + 1
        return self.unanswered >= self.policy.hang_after

    def died(self, now: float) -> None:
        """The process is gone; a restart that did not stay up counts as a failure."""
        self.up, self.unanswered = False, 0
        if self.up_since is not None and now - self.up_since < self.policy.stable_after_s:
            self.failures += 1
            self.last_error = f"it died again {now - self.up_since:.1f} s after its restart"
        else:
            self.failures = 0

    def delay(self) -> float:
        """Wait before the next attempt: 0 first, then doubling from the initial, capped."""
        if self.failures == 0:
            return 0.0
        p = self.policy
        return float(min(p.max_backoff_s, p.initial_backoff_s * 2 ** (self.failures - 1)))

    def restarted(self, reason: str, now: float) -> None:
        self.restarts[reason] += 1
        self.up, self.up_since = True, now

    def failed(self, error: str) -> None:
        self.failures += 1
        self.failed_attempts += 1
        self.last_error = error

    @property
    def unrecoverable(self) -> bool:
        """Down after ``give_up_after`` failures in a row: let the pod be restarted."""
        return not self.up and self.failures >= self.policy.give_up_after


class SupervisedServer(Protocol):
    """What the supervisor needs of the server (``EmbeddedRedis`` is one)."""

    @property
    def pid(self) -> int | None: ...

    @property
    def where(self) -> str:
        """The data directory, for messages."""
        ...

    def exit_status(self) -> int | None:
        """The exit status of a process that died (negative: a signal); ``None`` while it
        runs, or when it was stopped on purpose or never started."""
        ...

    async def restart(self) -> None:
        """Start a new server on the same data; raises ``StoreUnavailableError``."""
        ...

    async def answers(self, timeout_s: float) -> bool:
        """Whether the running server answers a PING within ``timeout_s``."""
        ...

    def kill(self) -> None:
        """End the running process at once (SIGKILL); its exit status then says so."""
        ...


class EmbeddedRedisSupervisor:
    """Watches the embedded server and restarts it; ``start``/``shutdown`` are idempotent.

    Stop it before the server (``shutdown`` first): a server stopped on purpose reports no
    exit status, so it is never restarted, but stopping the watcher first avoids the race.
    """

    def __init__(
        self,
        *,
        server: SupervisedServer,
        policy: RestartPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._server = server
        self._policy = policy or RestartPolicy()
        self._policy.validate()
        self._clock = clock
        self.state = RestartState(policy=self._policy)
        self._task: asyncio.Task[None] | None = None
        self._probe: asyncio.Task[None] | None = None
        self._hung_pid: int | None = None
        """The pid this supervisor killed as hung (its death is then counted as ``hung``)."""
        self._broken = ""
        """Set if the watcher itself failed (a bug): nothing restarts the server then."""

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._watch(), name="embedded-redis-supervisor")
            self._probe = asyncio.create_task(self._ping(), name="embedded-redis-ping")

    async def shutdown(self) -> None:
        tasks = [t for t in (self._task, self._probe) if t is not None]
        self._task = self._probe = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def unrecoverable(self) -> str | None:
        """Why the store cannot come back (for ``/-/healthy``), or ``None`` while it can."""
        s = self.state
        if self._broken and self._server.exit_status() is not None:
            return f"the embedded Redis is down and its supervisor failed: {self._broken}"
        if not s.unrecoverable:
            return None
        return (
            f"the embedded Redis is down and {s.failures} restarts in a row failed"
            f" (last: {s.last_error}); see {self._server.where}/redis.log: a corrupt AOF"
            " needs redis-check-aof --fix, a full disk or memory limit needs room"
        )

    async def _watch(self) -> None:
        try:
            while True:
                await asyncio.sleep(self._policy.check_interval_s)
                status = self._server.exit_status()
                if status is not None:
                    await self._recover(status)
        except Exception as e:  # a bug: say so, and fail /-/healthy once the server is down
            self._broken = f"{type(e).__name__}: {e}"
            log.exception("the embedded Redis supervisor failed; it restarts nothing now")

    async def _ping(self) -> None:
        """Kill a server that stopped answering (see the module docstring)."""
        policy, state = self._policy, self.state
        try:
            while True:
                await asyncio.sleep(policy.hang_check_interval_s)
                pid = self._server.pid
                if not state.up or pid is None or self._server.exit_status() is not None:
                    continue
                answered = await self._server.answers(policy.hang_timeout_s)
                if pid != self._server.pid or not state.up:
                    continue  # it died and came back meanwhile: that PING says nothing
                if state.pinged(answered):
                    log.error(
                        "embedded Redis (pid %s) answered no PING for %d checks in a row"
                        " (%.1f s each); killing it to restart it on %s",
                        pid,
                        state.unanswered,
                        policy.hang_timeout_s,
                        self._server.where,
                    )
                    self._hung_pid = pid
                    state.unanswered = 0
                    self._server.kill()
        except Exception as e:  # a bug: say so; the process watch goes on
            self._broken = f"{type(e).__name__}: {e}"
            log.exception("the embedded Redis PING check failed; hung servers stay now")

    async def _recover(self, status: int) -> None:
        dead_pid, state = self._server.pid, self.state
        reason = "hung" if dead_pid is not None and dead_pid == self._hung_pid else None
        self._hung_pid = None
        state.died(self._clock())
        log.warning(
            "embedded Redis (pid %s) %s; restarting it on %s",
            dead_pid,
            describe_exit(status),
            self._server.where,
        )
        while (error := await self._attempt(state.delay())) is not None:
            state.failed(error)
            log.error(
                "restarting the embedded Redis failed (%d in a row, next try in %.1f s): %s",
                state.failures,
                state.delay(),
                error,
            )
            if state.failures == self._policy.give_up_after:
                log.error("reporting unhealthy on /-/healthy: %s", self.unrecoverable())
        state.restarted(reason or death_reason(status), self._clock())
        log.warning(
            "embedded Redis restarted as pid %s on %s (restart %d; its AOF holds every"
            " acknowledged write). If it keeps dying, read %s/redis.log and check the"
            " memory limit (OOM killer; store.redis.embedded_max_memory_mb) and free disk",
            self._server.pid,
            self._server.where,
            sum(state.restarts.values()),
            self._server.where,
        )

    async def _attempt(self, delay: float) -> str | None:
        """One restart after ``delay``; the error, or ``None`` when the server is back."""
        await asyncio.sleep(delay)
        try:
            await self._server.restart()
        except (StoreUnavailableError, ConfigError) as e:  # ConfigError: its text is the fix
            return str(e)
        return None

"""The embedded Redis's supervisor: when it restarts, how it backs off, when it gives up.

The policy (``RestartState``) is pure and is driven here with explicit times. The watch
loop runs over ``ScriptedServer``, a stand-in that dies and fails to start on cue (a real
``redis-server`` that fails N restarts in a row cannot be had on demand; the real server's
restart is covered by ``integration/collectors/kill_under_load``). No sockets, no processes.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import time
from collections.abc import Callable

import pytest

from collectors._core.errors import ConfigError, StoreUnavailableError
from collectors.store.supervisor import (
    EmbeddedRedisSupervisor,
    RestartPolicy,
    RestartState,
    death_reason,
    describe_exit,
)

POLICY = RestartPolicy(initial_backoff_s=0.5, max_backoff_s=4.0, give_up_after=3)
FAST = RestartPolicy(
    check_interval_s=0.002,
    initial_backoff_s=0.002,
    max_backoff_s=0.01,
    give_up_after=3,
    stable_after_s=30.0,
    hang_check_interval_s=0.002,
    hang_timeout_s=0.01,
    hang_after=3,
)


@pytest.mark.parametrize(
    ("failures", "delay"),
    [
        pytest.param(0, 0.0, id="first-restart-is-immediate"),
        pytest.param(1, 0.5, id="then-the-initial-backoff"),
        pytest.param(2, 1.0, id="doubling"),
        pytest.param(3, 2.0, id="doubling-again"),
        pytest.param(4, 4.0, id="reaches-the-cap"),
        pytest.param(9, 4.0, id="stays-at-the-cap"),
    ],
)
def test_backoff_doubles_up_to_the_cap(failures: int, delay: float) -> None:
    assert RestartState(policy=POLICY, failures=failures).delay() == delay


@pytest.mark.parametrize(
    ("up_for_s", "failures_after"),
    [
        pytest.param(None, 0, id="death-of-the-first-server"),
        pytest.param(31.0, 0, id="death-after-a-stable-run-resets"),
        pytest.param(2.0, 3, id="quick-re-death-counts-as-a-failure"),
    ],
)
def test_a_crash_loop_backs_off(up_for_s: float | None, failures_after: int) -> None:
    state = RestartState(policy=POLICY, failures=2)
    now = 1000.0
    if up_for_s is not None:
        state.restarted("killed", now - up_for_s)
    state.died(now)
    assert state.failures == failures_after
    assert not state.up
    if failures_after:
        assert "died again 2.0 s after its restart" in state.last_error


def test_unrecoverable_after_give_up_after_failures_in_a_row_until_a_success() -> None:
    state = RestartState(policy=POLICY)
    state.died(10.0)
    for n in range(1, POLICY.give_up_after + 1):
        assert not state.unrecoverable, n
        state.failed(f"attempt {n}")
    assert state.unrecoverable
    assert (state.failed_attempts, state.last_error) == (3, "attempt 3")
    state.restarted("killed", 20.0)
    assert not state.unrecoverable
    assert state.restarts == {"killed": 1}


@pytest.mark.parametrize(
    ("status", "reason", "text"),
    [
        pytest.param(-signal.SIGKILL, "killed", "killed by SIGKILL", id="oom-killer"),
        pytest.param(-signal.SIGTERM, "killed", "killed by SIGTERM", id="sigterm"),
        pytest.param(1, "exited", "exited with status 1", id="failed-by-itself"),
        pytest.param(0, "exited", "exited with status 0", id="clean-exit"),
        pytest.param(-200, "killed", "killed by signal 200", id="unknown-signal"),
    ],
)
def test_how_the_server_died(status: int, reason: str, text: str) -> None:
    assert (death_reason(status), describe_exit(status)) == (reason, text)


@pytest.mark.parametrize(
    ("policy", "field"),
    [
        pytest.param(RestartPolicy(check_interval_s=0), "check_interval_s", id="check-interval"),
        pytest.param(RestartPolicy(initial_backoff_s=-1), "initial_backoff_s", id="backoff"),
        pytest.param(
            RestartPolicy(initial_backoff_s=5, max_backoff_s=1), "max_backoff_s", id="cap"
        ),
        pytest.param(RestartPolicy(give_up_after=0), "give_up_after", id="give-up"),
    ],
)
def test_policy_validation_names_the_field(policy: RestartPolicy, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        policy.validate()


class ScriptedServer:
    """Dies when told to, and refuses the next ``fail`` restarts."""

    where = "/data/redis"

    def __init__(self) -> None:
        self.status: int | None = None
        self.silent_pings = 0
        """PINGs left unanswered from now on (one per check)."""
        self.fail = 0
        self.fail_with: Exception = StoreUnavailableError(
            "embedded Redis exited with 1; see redis.log"
        )
        self.restarts = 0
        self.attempt_times: list[float] = []
        self._pid = 100

    @property
    def pid(self) -> int | None:
        return self._pid

    def exit_status(self) -> int | None:
        return self.status

    def die(self, status: int = -signal.SIGKILL) -> None:
        self.status = status

    async def answers(self, timeout_s: float) -> bool:
        await asyncio.sleep(0)
        if self.silent_pings:
            self.silent_pings -= 1
            return False
        return True

    def kill(self) -> None:
        self.status = -signal.SIGKILL

    async def restart(self) -> None:
        self.attempt_times.append(time.monotonic())
        await asyncio.sleep(0)
        if self.fail:
            self.fail -= 1
            raise self.fail_with
        self.restarts += 1
        self.status, self._pid = None, self._pid + 1


async def _until(condition: Callable[[], bool], what: str, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout_s} s: {what}"
        await asyncio.sleep(0.001)


async def test_a_dead_server_is_restarted_once_and_counted() -> None:
    server = ScriptedServer()
    supervisor = EmbeddedRedisSupervisor(server=server, policy=FAST)
    await supervisor.start()
    await supervisor.start()  # idempotent: one watcher
    try:
        await asyncio.sleep(FAST.check_interval_s * 10)
        assert server.restarts == 0  # a running server is left alone
        server.die()
        await _until(lambda: supervisor.state.up and server.restarts == 1, "restart")
        await asyncio.sleep(FAST.check_interval_s * 10)
        assert server.restarts == 1  # the new server runs: no second restart
        assert supervisor.state.restarts == {"killed": 1}
        assert supervisor.unrecoverable() is None
    finally:
        await supervisor.shutdown()
        await supervisor.shutdown()  # idempotent


async def test_failed_restarts_back_off_then_report_unrecoverable_then_recover() -> None:
    server = ScriptedServer()
    server.fail = 5
    supervisor = EmbeddedRedisSupervisor(server=server, policy=FAST)
    await supervisor.start()
    try:
        server.die(1)
        await _until(lambda: supervisor.state.failures == FAST.give_up_after, "give-up")
        reason = supervisor.unrecoverable()
        assert reason is not None
        assert "3 restarts in a row failed" in reason
        assert "/data/redis/redis.log" in reason and "redis-check-aof" in reason
        await _until(lambda: server.restarts == 1, "the sixth attempt succeeds")
        assert supervisor.unrecoverable() is None
        assert supervisor.state.restarts == {"exited": 1}
        assert supervisor.state.failed_attempts == 5
        gaps = [b - a for a, b in itertools.pairwise(server.attempt_times)]
        assert len(gaps) == 5
        assert all(g >= FAST.initial_backoff_s * 0.9 for g in gaps), gaps  # never a hot loop
    finally:
        await supervisor.shutdown()


async def test_a_restart_refused_by_its_settings_reports_the_fix() -> None:
    """The AOF needs the write module and it is gone: no retry cures it, /-/healthy says why."""
    server = ScriptedServer()
    server.fail = FAST.give_up_after
    server.fail_with = ConfigError("the AOF holds MESHFED.APPEND commands: run `make setup`")
    supervisor = EmbeddedRedisSupervisor(server=server, policy=FAST)
    await supervisor.start()
    try:
        server.die(1)
        await _until(lambda: supervisor.unrecoverable() is not None, "give-up")
        assert "run `make setup`" in (supervisor.unrecoverable() or "")
        assert "supervisor failed" not in (supervisor.unrecoverable() or "")
    finally:
        await supervisor.shutdown()


async def test_a_server_stopped_on_purpose_is_not_restarted() -> None:
    server = ScriptedServer()
    supervisor = EmbeddedRedisSupervisor(server=server, policy=FAST)
    await supervisor.start()
    try:
        server.status = None  # what EmbeddedRedis reports after stop(): no exit status
        await asyncio.sleep(FAST.check_interval_s * 20)
        assert server.attempt_times == []
    finally:
        await supervisor.shutdown()


async def test_shutdown_during_the_backoff_stops_the_attempts() -> None:
    server = ScriptedServer()
    server.fail = 100
    slow = RestartPolicy(check_interval_s=0.002, initial_backoff_s=60.0, max_backoff_s=60.0)
    supervisor = EmbeddedRedisSupervisor(server=server, policy=slow)
    await supervisor.start()
    server.die()
    await _until(lambda: len(server.attempt_times) == 1, "the first, immediate attempt")
    started = time.monotonic()
    await supervisor.shutdown()
    assert time.monotonic() - started < 1.0
    await asyncio.sleep(0.02)
    assert len(server.attempt_times) == 1


class BrokenServer(ScriptedServer):
    """A restart that raises what it must not (a bug): the supervisor must not hide it."""

    async def restart(self) -> None:
        raise RuntimeError("bug")


async def test_a_failed_supervisor_makes_a_down_server_unrecoverable() -> None:
    server = BrokenServer()
    supervisor = EmbeddedRedisSupervisor(server=server, policy=FAST)
    await supervisor.start()
    try:
        assert supervisor.unrecoverable() is None
        server.die()
        await _until(lambda: supervisor.unrecoverable() is not None, "reported")
        assert supervisor.unrecoverable() == (
            "the embedded Redis is down and its supervisor failed: RuntimeError: bug"
        )
    finally:
        await supervisor.shutdown()


@pytest.mark.parametrize(
    ("answers", "kill_at"),
    [
        pytest.param([True] * 5, None, id="answering-server-is-left-alone"),
        pytest.param([False, False, True, False, False, True], None, id="answer-resets-count"),
        pytest.param([True, False, False, False], 4, id="third-silent-ping-in-a-row-kills"),
    ],
)
def test_unanswered_pings_in_a_row_mark_the_server_hung(
    answers: list[bool], kill_at: int | None
) -> None:
    state = RestartState(policy=FAST)
    verdicts = [state.pinged(answered) for answered in answers]
    assert (verdicts.index(True) + 1 if True in verdicts else None) == kill_at


@pytest.mark.parametrize(
    ("silent_pings", "restarts"),
    [
        pytest.param(2, {}, id="two-silent-pings-are-tolerated"),
        pytest.param(3, {"hung": 1}, id="three-silent-pings-kill-and-restart"),
    ],
)
async def test_a_hung_server_is_killed_and_restarted(
    silent_pings: int, restarts: dict[str, int]
) -> None:
    server = ScriptedServer()
    supervisor = EmbeddedRedisSupervisor(server=server, policy=FAST)
    await supervisor.start()
    try:
        server.silent_pings = silent_pings
        await _until(lambda: server.silent_pings == 0, "the silent PINGs are sent")
        await asyncio.sleep(FAST.hang_check_interval_s * 20)
        assert supervisor.state.restarts == restarts
        assert server.restarts == sum(restarts.values())
        assert supervisor.state.up and supervisor.unrecoverable() is None
    finally:
        await supervisor.shutdown()


def test_hang_settings_are_validated() -> None:
    with pytest.raises(ConfigError, match="hang_after must be >= 1"):
        RestartPolicy(hang_after=0).validate()
    with pytest.raises(ConfigError, match="hang_timeout_s must be > 0"):
        RestartPolicy(hang_timeout_s=0).validate()

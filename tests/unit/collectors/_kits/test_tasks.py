"""``cancel_and_wait``: cancellation is the expected end; every other outcome is reported."""

from __future__ import annotations

import asyncio

import pytest

from collectors._kits.tasks import cancel_and_wait


async def _forever() -> None:
    await asyncio.Event().wait()


async def _fails_when_cancelled(error: Exception) -> None:
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        raise error from None


async def _failed_already(error: Exception) -> None:
    raise error


async def _ignores_cancel_then_returns() -> None:
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        await asyncio.sleep(0.01)  # cleanup, then a normal end


async def test_cancelled_and_finished_tasks_end_quietly() -> None:
    done = asyncio.create_task(asyncio.sleep(0))
    await done
    tasks = [asyncio.create_task(_forever()), asyncio.create_task(_ignores_cancel_then_returns())]
    await asyncio.sleep(0)
    await cancel_and_wait([*tasks, done])
    assert tasks[0].cancelled() and not tasks[1].cancelled()


async def test_nothing_to_do() -> None:
    await cancel_and_wait([])


async def test_one_error_is_raised_after_every_task_ended() -> None:
    other = asyncio.create_task(_ignores_cancel_then_returns())
    failing = asyncio.create_task(_fails_when_cancelled(ValueError("cleanup broke")))
    await asyncio.sleep(0)
    with pytest.raises(ValueError, match="cleanup broke"):
        await cancel_and_wait([failing, other])
    assert other.done()


async def test_an_error_from_before_the_cancellation_is_not_lost() -> None:
    crashed = asyncio.create_task(_failed_already(KeyError("bug")))
    await asyncio.sleep(0)
    with pytest.raises(KeyError):
        await cancel_and_wait([crashed])


async def test_several_errors_come_as_a_group() -> None:
    tasks = [
        asyncio.create_task(_fails_when_cancelled(ValueError("a"))),
        asyncio.create_task(_failed_already(RuntimeError("b"))),
        asyncio.create_task(_forever()),
    ]
    await asyncio.sleep(0)
    with pytest.raises(ExceptionGroup) as group:
        await cancel_and_wait(tasks)
    assert sorted(type(e).__name__ for e in group.value.exceptions) == [
        "RuntimeError",
        "ValueError",
    ]


async def test_the_callers_own_cancellation_propagates() -> None:
    slow = asyncio.create_task(_slow_to_stop())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(cancel_and_wait([slow]))
    await asyncio.sleep(0.01)  # the waiter waits for ``slow``'s cleanup
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert waiter.cancelled()
    slow.cancel()
    await asyncio.wait([slow])


async def _slow_to_stop() -> None:
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        await asyncio.sleep(10)

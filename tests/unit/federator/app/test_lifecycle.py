"""``cancel_and_wait`` (the end of every shutdown) and the ``Federator``'s own lifecycle
where it needs no cluster: idempotent shutdown, and a start that fails cleans up."""

from __future__ import annotations

import asyncio

import pytest

from federator.app import Federator, FederatorSettings
from federator.errors import ConfigError
from federator.lifecycle import cancel_and_wait
from tests.helpers.federator_builders import make_config


async def test_cancel_and_wait_cancels_and_waits() -> None:
    cleaned: list[str] = []

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(0)  # cleanup that itself awaits
            cleaned.append("done")

    tasks = [asyncio.create_task(forever()) for _ in range(3)]
    await asyncio.sleep(0)
    await cancel_and_wait(tasks)
    assert all(t.cancelled() for t in tasks) and cleaned == ["done"] * 3


async def test_cancel_and_wait_raises_a_tasks_own_error() -> None:
    async def broken() -> None:
        raise ValueError("bug")

    async def forever() -> None:
        await asyncio.sleep(3600)

    failed, running = asyncio.create_task(broken()), asyncio.create_task(forever())
    await asyncio.sleep(0)
    with pytest.raises(ValueError, match="bug"):
        await cancel_and_wait([failed, running])
    assert running.cancelled()  # every task ended before the error was raised


async def test_cancel_and_wait_does_not_swallow_the_callers_cancellation() -> None:
    async def stubborn() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await asyncio.sleep(3600)  # takes long to end

    inner = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    outer = asyncio.create_task(cancel_and_wait([inner]))
    await asyncio.sleep(0)
    outer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await outer
    inner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await inner


async def test_federator_shutdown_without_start_is_idempotent() -> None:
    federator = Federator(config=make_config())
    await federator.shutdown()
    await federator.shutdown()


async def test_federator_start_failure_raises_and_leaves_nothing_running() -> None:
    config = make_config()  # its kubeconfig files do not exist
    federator = Federator(config=config, settings=FederatorSettings())
    before = asyncio.all_tasks()
    with pytest.raises(ConfigError, match="kubeconfig /etc/meshfed/kubeconfig cannot be read"):
        await federator.start()
    assert federator.clients == {} and asyncio.all_tasks() == before
    await federator.shutdown()

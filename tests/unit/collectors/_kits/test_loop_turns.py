"""``LoopTurns``: a step's caller gets the work it queued started before the next step.

The model is the receiver's: callers decode (a synchronous step), queue the batch for a
writer task woken by an ``asyncio.Event`` (as the pipeline's coalescer is), then await the
write. Every case runs on both event loops the collector can run on, since the turn order
rests on how a loop orders ready callbacks.
"""

from __future__ import annotations

import asyncio

import pytest

from collectors._kits.event_loop import loop_factory, run_on
from collectors._kits.loop_turns import LoopTurns

LOOPS = [pytest.param("asyncio", id="asyncio"), pytest.param("uvloop", id="uvloop")]


class _Writer:
    """A writer task that takes every queued batch when woken, as the coalescer's workers do."""

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.queue: list[str] = []
        self.woken = asyncio.Event()
        self.task = asyncio.create_task(self._work())

    def submit(self, name: str) -> None:
        self.queue.append(name)
        self.woken.set()

    async def _work(self) -> None:
        while True:
            await self.woken.wait()
            self.woken.clear()
            taken, self.queue = self.queue, []
            self.log.append("write " + "+".join(taken))


async def _requests(names: list[str], turns: LoopTurns | None, log: list[str]) -> None:
    writer = _Writer(log)
    await asyncio.sleep(0)  # the writer waits for work, as an idle pipeline worker does

    def decode(name: str) -> str:
        log.append(f"decode {name}")
        return name

    async def handle(name: str) -> None:
        batch = decode(name) if turns is None else await turns.run(lambda: decode(name))
        writer.submit(batch)
        await asyncio.sleep(0.01)  # the write's round trip

    await asyncio.gather(*(handle(n) for n in names))
    writer.task.cancel()


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize(
    ("turns", "expected"),
    [
        pytest.param(
            True,
            ["decode a", "write a", "decode b", "write b", "decode c", "write c"],
            id="in-turns-each-batch-is-written-before-the-next-decode",
        ),
        pytest.param(
            False,
            ["decode a", "decode b", "decode c", "write a+b+c"],
            id="without-turns-every-decode-runs-before-any-write",
        ),
    ],
)
def test_order_of_decodes_and_writes(loop: str, turns: bool, expected: list[str]) -> None:
    log: list[str] = []
    run_on(
        lambda: _requests(["a", "b", "c"], LoopTurns() if turns else None, log), loop_factory(loop)
    )
    assert log == expected


@pytest.mark.parametrize("loop", LOOPS)
def test_a_busy_writer_does_not_hold_the_next_step(loop: str) -> None:
    """Turns reorder, they never wait for a write: with nothing woken, the next step runs
    while the first caller still awaits its (slow) write."""
    log: list[str] = []

    async def main() -> None:
        turns = LoopTurns()
        write_done = asyncio.Event()

        async def first() -> None:
            await turns.run(lambda: log.append("step 1"))
            await write_done.wait()
            log.append("write 1 done")

        async def second() -> None:
            await turns.run(lambda: log.append("step 2"))
            write_done.set()

        await asyncio.gather(first(), second())

    run_on(main, loop_factory(loop))
    assert log == ["step 1", "step 2", "write 1 done"]


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param("raise", id="a-step-that-raises-passes-the-turn-on"),
        pytest.param("cancel", id="a-caller-cancelled-while-waiting-passes-the-turn-on"),
    ],
)
def test_the_turn_is_always_passed_on(loop: str, spoil: str) -> None:
    """Tasks start in order: the first takes the turn, the spoiler and the holder wait
    behind it; the spoiler then raises in its step, or is cancelled while it waits."""
    log: list[str] = []

    async def main() -> None:
        turns = LoopTurns()

        def bad() -> None:
            raise ValueError("undecodable")

        async def spoiler() -> None:
            if spoil == "raise":
                with pytest.raises(ValueError, match="undecodable"):
                    await turns.run(bad)
                log.append("spoiler raised")
            else:
                await turns.run(lambda: log.append("spoiler ran"))

        first = asyncio.create_task(turns.run(lambda: log.append("first")))
        spoiling = asyncio.create_task(spoiler())
        holder = asyncio.create_task(turns.run(lambda: log.append("holder")))
        if spoil == "cancel":
            await asyncio.sleep(0)  # first has the turn; the spoiler and holder wait
            spoiling.cancel()
        await asyncio.wait([first, spoiling, holder], timeout=1)
        assert holder.done() and first.done() and spoiling.done()
        log.append(await asyncio.wait_for(turns.run(lambda: "free"), timeout=1))

    run_on(main, loop_factory(loop))
    expected = {
        "raise": ["first", "spoiler raised", "holder", "free"],
        "cancel": ["first", "holder", "free"],
    }
    assert log == expected[spoil]

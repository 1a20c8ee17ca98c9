"""The lifecycle every long-lived federator part shares, and the end of every shutdown.

``Component``: ``start()`` returns once the part runs (its loops are tasks); ``shutdown()`` is
idempotent and returns once everything the part started has ended. The ``Federator`` app
(``federator.app``) starts its parts in order and shuts them down in reverse.

``cancel_and_wait`` is the one way the federator stops the tasks it owns. It waits for every
task it cancelled (a task that is cancelled but not awaited may still be running its cleanup,
e.g. closing a watch's HTTP stream) and swallows only what it caused: the tasks' own
cancellation. A task that had ended with an error (a bug) re-raises it here instead of
vanishing, and a cancellation of the *caller* is never mistaken for the tasks' and swallowed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, Protocol


class Component(Protocol):
    """A long-lived part with an idempotent lifecycle."""

    async def start(self) -> None: ...

    async def shutdown(self) -> None: ...


async def cancel_and_wait(tasks: Iterable[asyncio.Future[Any]]) -> None:
    """Cancel every task and wait until all have ended.

    Raises the error of a task that ended with one other than its cancellation (the first,
    after every task has ended); raises ``CancelledError`` if the caller itself is cancelled
    meanwhile (the tasks are cancelled already and end on their own)."""
    pending = list(tasks)
    for task in pending:
        task.cancel()
    if not pending:
        return
    await asyncio.wait(pending)
    for task in pending:
        error = None if task.cancelled() else task.exception()
        if error is not None:
            raise error

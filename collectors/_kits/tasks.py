"""Ending the tasks a component owns: cancel them, wait for them, and lose none of their errors.

One helper because hand-written cancel loops go wrong the same two ways: a
``suppress(CancelledError)`` around ``await task`` also swallows the *caller's* own
cancellation (a shutdown that cannot be interrupted), and awaiting the tasks one by one stops
at the first failure, leaving the others unawaited and their errors unseen.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel every task, then wait until each has ended (a shutdown's last step).

    A task that ended cancelled, or returned, is done with. Any other exception a task ended
    with — raised before the cancellation or while handling it — is raised here once all
    tasks have ended: the exception itself when one task failed, a ``BaseExceptionGroup``
    of them when several did. If the caller is cancelled while it waits, its
    ``CancelledError`` propagates at once (the tasks stay cancelled).
    """
    pending = list(dict.fromkeys(tasks))
    if not pending:
        return
    for task in pending:
        task.cancel()
    await asyncio.wait(pending)
    errors = [
        error
        for task in pending
        if not task.cancelled() and (error := task.exception()) is not None
    ]
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise BaseExceptionGroup(f"{len(errors)} of {len(pending)} tasks failed", errors)

"""The event loop a collector process runs on: uvicorn's ``--loop`` choices.

``auto`` takes uvloop where it is installed (a dependency of meshfed on Linux and macOS) and
the standard loop elsewhere, as uvicorn's own ``--loop auto`` does; ``asyncio`` forces the
standard loop (a debugging aid: ``PYTHONASYNCIODEBUG`` and asyncio's tracebacks behave as
documented); ``uvloop`` insists on uvloop and refuses to start without it.

Why uvloop: a remote_write request spends a good part of the collector's CPU in the event
loop and its socket transports rather than in meshfed's code. uvloop (libuv, in C) runs the
same asyncio programs with less of that overhead; on the remote_write benchmark it took
about an eighth off the collector's CPU per sample (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from collectors._core.errors import ConfigError

T = TypeVar("T")

LOOPS = ("auto", "asyncio", "uvloop")
"""The accepted ``--loop`` values."""


def uvloop_installed() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory for ``choice`` (``None``: the standard loop); ``ConfigError`` with the fix
    for an unknown choice or ``uvloop`` where it is not installed."""
    if choice not in LOOPS:
        raise ConfigError(f"--loop must be one of {', '.join(LOOPS)}, not {choice!r}")
    if choice == "asyncio":
        return None
    if not uvloop_installed():
        if choice == "uvloop":
            raise ConfigError(
                "--loop uvloop: uvloop is not installed here; pip install uvloop,"
                " or run with --loop asyncio"
            )
        return None
    import uvloop  # noqa: PLC0415 - optional, checked above

    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run_on(
    main: Callable[[], Coroutine[Any, Any, T]],
    factory: Callable[[], asyncio.AbstractEventLoop] | None,
) -> T:
    """``asyncio.run(main())`` on a loop from ``factory`` (the standard loop for ``None``)."""
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main())

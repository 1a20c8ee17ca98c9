"""Gives memory the federator freed back to the operating system (glibc's ``malloc_trim``).

Why: a federator's memory has two phases. Starting (or relisting after a 410) it decodes
thousands of objects per cluster, page by page, and keeps a small slimmed form of each; the
pages themselves are garbage a moment later. Python returns its own small-object arenas
when they empty, but glibc keeps what larger objects (page bodies, big dict tables) freed
in its heaps until asked, so resident memory stays at the start-up peak for the life of
the process. ``malloc_trim(0)`` hands free pages back (measured at the published shape:
~8 MiB of ~160). It runs once a minute on the event loop (a few milliseconds) and counts
nothing else; on a C library without it (musl, macOS) the trimmer does nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from collections.abc import Callable
from dataclasses import dataclass

from federator.lifecycle import cancel_and_wait

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HeapSettings:
    """When freed memory is given back."""

    trim_period_seconds: float = 60.0
    """Seconds between two trims; 0 turns trimming off."""

    def __post_init__(self) -> None:
        if self.trim_period_seconds < 0:
            raise ValueError(
                f"heap.trim_period_seconds {self.trim_period_seconds} must be >= 0 (0: off)"
            )


def malloc_trim() -> Callable[[], object] | None:
    """The C library's ``malloc_trim(0)``, or None when it has none."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


class HeapTrimmer:
    """A component: trims the heap every ``trim_period_seconds`` (see the module docstring)."""

    def __init__(self, settings: HeapSettings, trim: Callable[[], object] | None = None) -> None:
        self._settings = settings
        self._trim = trim if trim is not None else malloc_trim()
        self._task: asyncio.Task[None] | None = None
        self.trims = 0

    async def start(self) -> None:
        if self._task is not None or self._trim is None or not self._settings.trim_period_seconds:
            return
        self._task = asyncio.create_task(self._run(self._trim), name="heap-trim")

    async def shutdown(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait([task])

    async def _run(self, trim: Callable[[], object]) -> None:
        while True:
            await asyncio.sleep(self._settings.trim_period_seconds)
            trim()
            self.trims += 1

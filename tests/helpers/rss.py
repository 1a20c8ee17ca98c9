"""Peak-RSS sampling of the test process, for the bad-input goals (RSS grows by at most N MiB
while a bomb is being refused). Receivers under test run in-process, so this process's RSS is
the server's."""

from __future__ import annotations

import os
import threading
from pathlib import Path

MIB = 1024 * 1024


def rss_mib() -> float:
    """This process's resident set size in MiB."""
    with Path("/proc/self/statm").open() as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MIB


class PeakRss:
    """Samples this process's RSS every 5 ms in a thread; ``growth`` is peak minus start."""

    def __init__(self) -> None:
        self.start = rss_mib()
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss_mib())

    def growth(self) -> float:
        self._stop.set()
        self._thread.join(timeout=5)
        return max(self.peak, rss_mib()) - self.start

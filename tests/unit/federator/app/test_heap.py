"""The heap trimmer: trims on its period, can be turned off, stops cleanly. No sockets."""

from __future__ import annotations

import asyncio
import platform

import pytest

from federator.heap import HeapSettings, HeapTrimmer, malloc_trim


@pytest.mark.parametrize(
    ("period", "expect_trims"),
    [
        pytest.param(0.01, True, id="trims-on-its-period"),
        pytest.param(0.0, False, id="period-zero-is-off"),
    ],
)
async def test_trimmer(period: float, expect_trims: bool) -> None:
    calls: list[int] = []
    trimmer = HeapTrimmer(HeapSettings(trim_period_seconds=period), trim=lambda: calls.append(1))
    await trimmer.start()
    await trimmer.start()  # idempotent
    await asyncio.sleep(0.1)
    await trimmer.shutdown()
    await trimmer.shutdown()
    stopped_at = len(calls)
    await asyncio.sleep(0.05)
    assert bool(calls) is expect_trims
    assert len(calls) == stopped_at == trimmer.trims


def test_negative_period_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="must be >= 0"):
        HeapSettings(trim_period_seconds=-1)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_glibc_trim_is_found_and_runs() -> None:
    trim = malloc_trim()
    assert trim is not None
    assert trim() in (0, 1)

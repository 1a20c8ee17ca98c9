from __future__ import annotations

import pytest

from collectors._core.errors import ConfigError, MemoryLimitError, RetryableError
from collectors.pipeline.memory import MIB, MemoryLimiter, MemorySettings


class FakeProcess:
    """RSS readings and a clock the test moves (the limiter reads RSS through a function)."""

    def __init__(self, rss_mib: int) -> None:
        self.rss = rss_mib * MIB
        self.now = 0.0
        self.reads = 0
        self.collections = 0

    def read(self) -> int:
        self.reads += 1
        return self.rss

    def collect(self) -> int:
        self.collections += 1
        return 0


def limiter(proc: FakeProcess, **kw: int) -> MemoryLimiter:
    settings = MemorySettings(**kw)  # type: ignore[arg-type]
    return MemoryLimiter(
        settings=settings, read_rss=proc.read, clock=lambda: proc.now, collect_garbage=proc.collect
    )


def test_under_soft_limit_admits() -> None:
    proc = FakeProcess(100)
    limiter(proc, limit_mib=200, spike_mib=50).check()


def test_over_soft_limit_refuses_retryably() -> None:
    proc = FakeProcess(160)
    with pytest.raises(MemoryLimitError) as e:
        limiter(proc, limit_mib=200, spike_mib=50).check()
    assert isinstance(e.value, RetryableError)


def test_over_hard_limit_forces_gc() -> None:
    proc = FakeProcess(300)
    with pytest.raises(MemoryLimitError):
        limiter(proc, limit_mib=200).check()
    assert proc.collections == 1


def test_rss_is_cached_between_checks() -> None:
    proc = FakeProcess(100)
    lim = limiter(proc, limit_mib=200)
    for _ in range(10):
        lim.check()
    assert proc.reads == 1
    proc.now += 1.0
    proc.rss = 190 * MIB
    with pytest.raises(MemoryLimitError):
        lim.check()


def test_disabled_rss_check_never_reads() -> None:
    proc = FakeProcess(10_000)
    limiter(proc, limit_mib=0).check()
    assert proc.reads == 0


def test_in_flight_budget() -> None:
    lim = limiter(FakeProcess(0), max_in_flight_mib=1)
    with lim.reserve(MIB // 2):
        with pytest.raises(MemoryLimitError), lim.reserve(MIB // 2 + 1):
            pass
        assert lim.in_flight_bytes == MIB // 2
    assert lim.in_flight_bytes == 0
    with lim.reserve(MIB):
        pass


@pytest.mark.parametrize(
    "kw",
    [
        pytest.param({"limit_mib": -1}, id="negative-limit"),
        pytest.param({"limit_mib": 10}, id="limit-below-64"),
        pytest.param({"limit_mib": 100, "spike_mib": 100}, id="spike-not-below-limit"),
        pytest.param({"max_in_flight_mib": -1}, id="negative-in-flight"),
        pytest.param({"check_interval_s": 0}, id="zero-interval"),
    ],
)
def test_settings_validation(kw: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        MemorySettings(**kw).validate()  # type: ignore[arg-type]

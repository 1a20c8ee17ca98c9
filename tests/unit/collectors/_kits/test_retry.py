"""The shared backoff: its delays, and which errors are retried."""

from __future__ import annotations

import pytest

from collectors._core.errors import PermanentError, RetryableError, StoreUnavailableError
from collectors._kits.retry import Backoff, retry


@pytest.mark.parametrize(
    ("attempt", "low", "high"),
    [
        pytest.param(0, 0.4, 0.6, id="first-is-base"),
        pytest.param(1, 0.8, 1.2, id="doubles"),
        pytest.param(3, 3.2, 4.8, id="eight-times-base"),
        pytest.param(4, 4.0, 6.0, id="capped"),
        pytest.param(5000, 4.0, 6.0, id="huge-attempt-does-not-overflow"),
    ],
)
def test_delay_is_capped_exponential_with_jitter(attempt: int, low: float, high: float) -> None:
    backoff = Backoff(base_s=0.5, cap_s=5.0)
    assert all(low <= backoff.delay(attempt) <= high for _ in range(200))


class _Flaky:
    def __init__(self, failures: int, error: Exception) -> None:
        self.calls = 0
        self._failures = failures
        self._error = error

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self._failures:
            raise self._error
        return "stored"


class _Sleeps:
    """Records the delays instead of waiting them."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


async def test_retryable_errors_are_retried_until_success() -> None:
    call, sleeps = _Flaky(2, StoreUnavailableError("down")), _Sleeps()
    result = await retry(call, retries=3, backoff=Backoff(base_s=1, cap_s=10), sleep=sleeps)
    assert (result, call.calls) == ("stored", 3)
    assert [round(s) for s in sleeps.delays] == [1, 2]


async def test_the_last_retryable_error_propagates() -> None:
    call, sleeps = _Flaky(10, RetryableError("still down")), _Sleeps()
    with pytest.raises(RetryableError, match="still down"):
        await retry(call, retries=2, backoff=Backoff(base_s=1, cap_s=10), sleep=sleeps)
    assert (call.calls, len(sleeps.delays)) == (3, 2)


async def test_a_permanent_error_is_not_retried() -> None:
    call, sleeps = _Flaky(1, PermanentError("bad")), _Sleeps()
    with pytest.raises(PermanentError):
        await retry(call, retries=5, backoff=Backoff(base_s=1, cap_s=10), sleep=sleeps)
    assert (call.calls, sleeps.delays) == (1, [])

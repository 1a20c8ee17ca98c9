"""The controller: what follows a reconcile (``next_step``) and one worker step (``process``)
over a scripted reconciler - crash guard, requeue with backoff, forget, the counters."""

from __future__ import annotations

import pytest

from federator.core.model import ServiceKey
from federator.errors import ApiPermanentError, ApiRetryableError
from federator.metrics import FederatorMetrics
from federator.reactor.controller import (
    CRASH,
    ERROR,
    REQUEUE,
    SUCCESS,
    Controller,
    ControllerSettings,
    Step,
    next_step,
)
from federator.reconcile.outcome import Result

KEY = ServiceKey("default", "reviews")
DENIED = 60.0
TRANSIENT = ApiRetryableError("list ServiceEntries in c2: HTTP 503", status=503)
INVALID = ApiPermanentError("apply DestinationRule in c2: HTTP 422: invalid", status=422)
FORBIDDEN = ApiPermanentError("delete ServiceEntry in c2: HTTP 403: forbidden", status=403)


@pytest.mark.parametrize(
    ("result", "step"),
    [
        pytest.param(Result(), Step(SUCCESS), id="success-forgets"),
        pytest.param(
            Result(retryable=TRANSIENT, retry_after=7.0),
            Step(REQUEUE, requeue=True, at_least=7.0),
            id="transient-requeued-after-retry-after",
        ),
        pytest.param(Result(refused=INVALID), Step(ERROR), id="invalid-object-not-retried"),
        pytest.param(
            Result(refused=FORBIDDEN, forbidden=True),
            Step(ERROR, requeue=True, at_least=DENIED),
            id="forbidden-retried-slowly",
        ),
        pytest.param(
            Result(retryable=TRANSIENT, refused=FORBIDDEN, forbidden=True),
            Step(REQUEUE, requeue=True),
            id="transient-failure-wins",
        ),
    ],
)
def test_next_step(result: Result, step: Step) -> None:
    assert next_step(result, denied_retry_seconds=DENIED) == step


class Scripted:
    """A reconciler that answers from a script (an exception is raised, a Result returned)."""

    def __init__(self, *answers: Result | Exception) -> None:
        self.answers = list(answers)
        self.observed: list[float | None] = []

    async def reconcile(self, key: ServiceKey, *, observed_at: float | None = None) -> Result:
        self.observed.append(observed_at)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def controller(reconciler: Scripted, metrics: FederatorMetrics) -> Controller:
    return Controller(
        reconciler=reconciler,
        metrics=metrics,
        resync_period_seconds=300.0,
        settings=ControllerSettings(workers=1, queue_max=10),
    )


def count(metrics: FederatorMetrics, result: str) -> float:
    value = metrics.registry.get_sample_value(
        "meshfed_federator_reconciles_total", {"result": result}
    )
    return float(value or 0.0)


async def test_crash_is_counted_requeued_and_keeps_the_observed_time() -> None:
    metrics = FederatorMetrics()
    reconciler = Scripted(RuntimeError("bug"), Result())
    ctl = controller(reconciler, metrics)
    ctl.add(KEY, observed_at=12.5)
    key = await ctl.queue.get()
    assert await ctl.process(key) == Step(CRASH, requeue=True)
    assert count(metrics, CRASH) == 1 and ctl.queue.failures(KEY) == 1
    assert not ctl.idle  # waiting for its backoff
    ctl.queue.add(KEY)  # skip the backoff
    assert await ctl.process(await ctl.queue.get()) == Step(SUCCESS)
    assert reconciler.observed == [12.5, 12.5]  # the retry still measures from the change
    assert count(metrics, SUCCESS) == 1 and ctl.queue.failures(KEY) == 0
    await ctl.shutdown()


async def test_refusal_counted_as_error_and_forgotten() -> None:
    metrics = FederatorMetrics()
    ctl = controller(Scripted(Result(refused=INVALID)), metrics)
    ctl.add(KEY)
    assert await ctl.process(await ctl.queue.get()) == Step(ERROR)
    assert (count(metrics, ERROR), count(metrics, REQUEUE)) == (1, 0)
    assert ctl.idle
    await ctl.shutdown()


async def test_queue_gauges_read_the_queue() -> None:
    metrics = FederatorMetrics()
    ctl = controller(Scripted(), metrics)
    for i in range(12):  # two more than the bound
        ctl.add(ServiceKey("default", f"s{i}"))
    depth = metrics.registry.get_sample_value("meshfed_federator_workqueue_depth")
    drops = metrics.registry.get_sample_value("meshfed_federator_workqueue_drops")
    assert (depth, drops) == (10, 2)
    await ctl.shutdown()


def gauge(metrics: FederatorMetrics, name: str) -> float | None:
    return metrics.registry.get_sample_value(f"meshfed_federator_workqueue_{name}")


async def test_active_and_retrying_gauges_follow_a_failing_key() -> None:
    metrics = FederatorMetrics()
    ctl = controller(Scripted(Result(retryable=TRANSIENT)), metrics)
    ctl.add(KEY)
    key = await ctl.queue.get()
    assert (gauge(metrics, "depth"), gauge(metrics, "active")) == (0, 1)
    await ctl.process(key)
    assert (gauge(metrics, "active"), gauge(metrics, "retrying")) == (0, 1)
    ctl.queue.add(KEY)  # the backoff is cut short: queued, no longer retrying
    assert (gauge(metrics, "depth"), gauge(metrics, "retrying")) == (1, 0)
    await ctl.shutdown()


async def test_start_and_shutdown_are_idempotent() -> None:
    metrics = FederatorMetrics()
    ctl = controller(Scripted(Result()), metrics)
    await ctl.start()
    await ctl.start()
    ctl.add(KEY)
    await ctl.shutdown()
    await ctl.shutdown()
    assert not ctl.add(KEY)  # a shut-down queue refuses keys

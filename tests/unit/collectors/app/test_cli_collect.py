"""``meshfed collect`` flags through typer's CliRunner: what they set, and how a bad one fails.

``run`` (which would start the collector) is replaced by a stub keeping the configuration.
"""

from __future__ import annotations

import asyncio

import pytest
import typer
from typer.testing import CliRunner

from collectors.app import cli_collect
from collectors.app.config import CollectorConfig


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[CollectorConfig]:
    configs: list[CollectorConfig] = []

    async def run(config: CollectorConfig) -> None:
        configs.append(config)

    monkeypatch.setattr(cli_collect, "run", run)
    return configs


def invoke(*args: str) -> tuple[int, str]:
    app = typer.Typer()
    app.command()(cli_collect.collect)
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("args", "interval", "percentiles"),
    [
        pytest.param([], 10.0, (90.0,), id="defaults"),
        pytest.param(["--statsd-flush-interval", "2.5"], 2.5, (90.0,), id="flush-interval"),
        pytest.param(["--statsd-percentiles", "90,99"], 10.0, (90.0, 99.0), id="percentiles"),
        pytest.param(
            ["--statsd-percentiles", "99.9, -10", "--statsd-flush-interval", "1"],
            1.0,
            (99.9, -10.0),
            id="both-with-spaces-and-top-values",
        ),
        pytest.param(
            ["--set", "statsd.percentiles=[50]", "--statsd-percentiles", "75"],
            10.0,
            (50.0,),
            id="set-wins-over-the-shortcut",
        ),
    ],
)
def test_statsd_flags_set_the_settings(
    started: list[CollectorConfig], args: list[str], interval: float, percentiles: tuple[float]
) -> None:
    code, output = invoke(*args)
    assert code == 0, output
    [config] = started
    assert config.statsd is not None
    assert config.statsd.flush_interval_s == interval
    assert config.statsd.percentiles == percentiles


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["--statsd-percentiles", "90,abc"],
            "'abc' is not a number; write numbers separated by commas",
            id="not-a-number",
        ),
        pytest.param(
            ["--statsd-percentiles", "0"], "statsd.percentiles must be in -100..100", id="zero"
        ),
        pytest.param(
            ["--statsd-flush-interval", "0.01"],
            "statsd.flush_interval_s must be in 0.1..3600",
            id="interval-too-short",
        ),
    ],
)
def test_bad_statsd_flags_exit_2_with_the_fix(
    started: list[CollectorConfig], args: list[str], message: str
) -> None:
    code, output = invoke(*args)
    assert code == 2
    assert message in output
    assert started == []


@pytest.fixture
def loop_type(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The top-level module of the loop class the stubbed collector ran on (uvloop, asyncio)."""
    seen: list[str] = []

    async def run(config: CollectorConfig) -> None:
        seen.append(type(asyncio.get_running_loop()).__module__.split(".")[0])

    monkeypatch.setattr(cli_collect, "run", run)
    return seen


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param([], "uvloop", id="auto-takes-uvloop-where-installed"),
        pytest.param(["--loop", "uvloop"], "uvloop", id="uvloop"),
        pytest.param(["--loop", "asyncio"], "asyncio", id="asyncio"),
    ],
)
def test_loop_flag_picks_the_event_loop(
    loop_type: list[str], args: list[str], expected: str
) -> None:
    code, output = invoke(*args)
    assert code == 0, output
    assert loop_type == [expected]


def test_unknown_loop_exits_2_with_the_choices(started: list[CollectorConfig]) -> None:
    code, output = invoke("--loop", "tokio")
    assert code == 2
    assert "--loop must be one of auto, asyncio, uvloop, not 'tokio'" in output
    assert started == []

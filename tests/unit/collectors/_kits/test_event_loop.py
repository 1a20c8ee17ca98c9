"""The ``--loop`` choice: which loop factory each value gives, and the errors that say the fix."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from collectors._core.errors import ConfigError
from collectors._kits import event_loop


@pytest.mark.parametrize(
    ("choice", "installed", "expected"),
    [
        pytest.param("auto", True, uvloop.new_event_loop, id="auto-with-uvloop"),
        pytest.param("auto", False, None, id="auto-without-uvloop-is-asyncio"),
        pytest.param("uvloop", True, uvloop.new_event_loop, id="uvloop"),
        pytest.param("asyncio", True, None, id="asyncio-even-with-uvloop"),
    ],
)
def test_loop_factory(
    monkeypatch: pytest.MonkeyPatch, choice: str, installed: bool, expected: object
) -> None:
    monkeypatch.setattr(event_loop, "uvloop_installed", lambda: installed)
    assert event_loop.loop_factory(choice) is expected


@pytest.mark.parametrize(
    ("choice", "installed", "message"),
    [
        pytest.param(
            "uvloop",
            False,
            "uvloop is not installed here; pip install uvloop, or run with --loop asyncio",
            id="uvloop-missing",
        ),
        pytest.param("libuv", True, "--loop must be one of auto, asyncio, uvloop", id="unknown"),
    ],
)
def test_bad_choice_says_the_fix(
    monkeypatch: pytest.MonkeyPatch, choice: str, installed: bool, message: str
) -> None:
    monkeypatch.setattr(event_loop, "uvloop_installed", lambda: installed)
    with pytest.raises(ConfigError, match=message):
        event_loop.loop_factory(choice)


@pytest.mark.parametrize(
    ("factory", "loop_class"),
    [
        pytest.param(uvloop.new_event_loop, uvloop.Loop, id="uvloop"),
        pytest.param(None, asyncio.BaseEventLoop, id="standard"),
    ],
)
def test_run_on_runs_the_coroutine_on_that_loop(factory: object, loop_class: type) -> None:
    async def main() -> tuple[type, int]:
        await asyncio.sleep(0)
        return type(asyncio.get_running_loop()), 42

    ran_on, value = event_loop.run_on(main, factory)  # type: ignore[arg-type]
    assert issubclass(ran_on, loop_class)
    assert value == 42

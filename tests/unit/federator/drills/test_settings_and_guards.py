"""The ``drills:`` config group and how a query answer becomes a guard evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from federator.core.config_drills import DrillSettings, parse_drills
from federator.drills.guards import Evaluation, interpret
from federator.errors import ConfigError


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(None, DrillSettings(), id="absent-defaults"),
        pytest.param(
            {"enabled": True, "queryUrl": "http://store:9464/", "workers": 2,
             "pollInterval": "500ms"},
            DrillSettings(enabled=True, query_url="http://store:9464", workers=2,
                          poll_interval_seconds=0.5),
            id="full",
        ),
    ],
)  # fmt: skip
def test_parse(raw: Any, expected: DrillSettings) -> None:
    assert parse_drills(raw, base_dir=Path("/")) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param({"enabled": "yes"}, "drills.enabled must be true or false", id="enabled"),
        pytest.param({"queryUrl": "store:9464", "enabled": True}, "drills.queryUrl", id="url"),
        pytest.param({"workers": 0, "enabled": True}, "drills.workers", id="workers"),
        pytest.param({"pollInterval": "soon"}, "drills.pollInterval", id="duration"),
        pytest.param({"bogus": 1}, "bogus", id="unknown-field"),
        pytest.param({"enabled": True, "tokenFile": "/nonexistent/t"}, "drills.tokenFile",
                     id="token-file"),
    ],
)  # fmt: skip
def test_bad_settings_name_the_field(raw: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_drills(raw, base_dir=Path("/")).validate()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            {"status": "success", "data": {"resultType": "vector", "result": [
                {"metric": {}, "value": [1, "0.25"]}]}},
            Evaluation(True, 0.25), id="non-empty-vector-holds",
        ),
        pytest.param(
            {"status": "success", "data": {"resultType": "vector", "result": []}},
            Evaluation(False, None), id="empty-vector-does-not-hold",
        ),
        pytest.param(
            {"status": "success", "data": {"resultType": "scalar", "result": [1, "0"]}},
            Evaluation(False, 0.0), id="zero-scalar",
        ),
    ],
)  # fmt: skip
def test_interpret(body: Any, expected: Evaluation) -> None:
    assert interpret(body) == expected


def test_error_answer_is_unknown_not_false() -> None:
    out = interpret({"status": "error", "error": "parse error"})
    assert out.holds is None and "parse error" in out.message

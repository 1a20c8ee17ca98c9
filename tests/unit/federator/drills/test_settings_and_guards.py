"""The ``drills:`` config group and how a query answer becomes a guard evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from federator.core.config_drills import DrillSettings, StoreTls, parse_drills
from federator.drills.guards import Evaluation, interpret, store_verify
from federator.errors import ConfigError


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(None, DrillSettings(), id="absent-defaults"),
        pytest.param(
            {"enabled": True, "queryUrl": "http://store:9464/", "workers": 2,
             "pollInterval": "500ms", "transientRetry": "2m"},
            DrillSettings(enabled=True, query_url="http://store:9464", workers=2,
                          poll_interval_seconds=0.5, transient_retry_seconds=120.0),
            id="full",
        ),
    ],
)  # fmt: skip
def test_parse(raw: Any, expected: DrillSettings) -> None:
    assert parse_drills(raw, base_dir=Path("/")) == expected


def test_tls_paths_are_relative_to_the_config_and_validated(tmp_path: Path) -> None:
    for name in ("ca.pem", "c.pem", "k.pem"):
        (tmp_path / name).write_text("PEM")
    tls = {"caFile": "ca.pem", "certFile": "c.pem", "keyFile": str(tmp_path / "k.pem")}
    raw = {"enabled": True, "queryUrl": "https://store:9464", "tls": tls}
    settings = parse_drills(raw, base_dir=tmp_path)
    assert settings.tls == StoreTls(tmp_path / "ca.pem", tmp_path / "c.pem", tmp_path / "k.pem")
    settings.validate()


@pytest.mark.parametrize(
    ("tls", "url", "message"),
    [
        pytest.param({"caFile": "ca.pem"}, "http://store:9464", "is not https", id="plain-http"),
        pytest.param({"certFile": "ca.pem"}, "https://store:9464", "go together",
                     id="cert-without-key"),
        pytest.param({"caFile": "missing.pem"}, "https://store:9464",
                     "drills.tls.caFile .* is not a readable file", id="missing-file"),
        pytest.param({"caFile": "ca.pem", "ca": "x"}, "https://store:9464", "drills.tls.*ca",
                     id="unknown-key"),
    ],
)  # fmt: skip
def test_bad_tls_names_the_field(tmp_path: Path, tls: Any, url: str, message: str) -> None:
    (tmp_path / "ca.pem").write_text("PEM")
    with pytest.raises(ConfigError, match=message):
        parse_drills({"enabled": True, "queryUrl": url, "tls": tls}, base_dir=tmp_path).validate()


def test_tls_files_that_do_not_load_are_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not a certificate")
    with pytest.raises(ConfigError, match=r"drills\.tls: cannot load .*ca\.pem"):
        store_verify(StoreTls(ca_file=tmp_path / "ca.pem"))
    assert store_verify(StoreTls()) is True  # the system's CAs


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param({"enabled": "yes"}, "drills.enabled must be true or false", id="enabled"),
        pytest.param({"queryUrl": "store:9464", "enabled": True}, "drills.queryUrl", id="url"),
        pytest.param({"workers": 0, "enabled": True}, "drills.workers", id="workers"),
        pytest.param({"pollInterval": "soon"}, "drills.pollInterval", id="duration"),
        pytest.param({"enabled": True, "transientRetry": "11m"},
                     "drills.transientRetry must be between 0s and 10m", id="transient-retry"),
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

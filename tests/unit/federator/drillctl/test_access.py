"""Where the CLI looks for drills and the store: the same places the controller uses."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from federator.core.config import FederationConfig
from federator.core.config_drills import DrillSettings
from federator.drillctl.access import namespace_of, store_client
from tests.helpers.federator_builders import make_config

pytestmark = pytest.mark.unit


def config(**drills: Any) -> FederationConfig:
    return dataclasses.replace(make_config(), drills=DrillSettings(enabled=True, **drills))


@pytest.mark.parametrize(
    ("cfg", "option", "expected"),
    [
        pytest.param(None, None, "meshfed-system", id="no-config"),
        pytest.param(make_config(), None, "meshfed-system", id="config-namespace"),
        pytest.param(config(namespace="game-days"), None, "game-days", id="drills-namespace"),
        pytest.param(config(namespace="game-days"), "other", "other", id="option-wins"),
    ],
)
def test_namespace(cfg: FederationConfig | None, option: str | None, expected: str) -> None:
    assert namespace_of(cfg, option) == expected


def test_store_from_option_env_or_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token = tmp_path / "token"
    token.write_text("from-the-config\n")
    cfg = config(query_url="http://store:9464", token_file=token)
    monkeypatch.delenv("MESHFED_STORE_URL", raising=False)
    monkeypatch.delenv("MESHFED_STORE_TOKEN", raising=False)
    assert store_client(None) is None
    client = store_client(None, cfg)
    assert client is not None and client.base == "http://store:9464"
    assert client._http.headers["authorization"] == "Bearer from-the-config"
    monkeypatch.setenv("MESHFED_STORE_URL", "http://env:1/")
    monkeypatch.setenv("MESHFED_STORE_TOKEN", "from-env")
    client = store_client(None, cfg)
    assert client is not None and client.base == "http://env:1"
    assert client._http.headers["authorization"] == "Bearer from-env"
    client = store_client("http://option:2", cfg)
    assert client is not None and client.base == "http://option:2"

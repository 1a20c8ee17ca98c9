"""The ``api:`` section (TLS, mutual TLS, bearer token of the status API): parsing and the
start-up checks, each naming the field by its YAML path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from federator.core.config import ListenSettings
from federator.core.config_parse import load_config
from federator.core.config_security import ApiSecuritySettings, parse_api_security
from federator.errors import ConfigError

CLUSTERS = [{"name": "c1", "kubeconfig": {"path": "kubeconfig"}}]


@pytest.fixture
def files(tmp_path: Path) -> Path:
    for name in ("tls.crt", "tls.key", "ca.crt"):
        (tmp_path / name).write_text("PEM")
    (tmp_path / "token").write_text("  the-token\n")
    (tmp_path / "empty").write_text(" \n")
    return tmp_path


def _write(directory: Path, doc: dict[str, Any]) -> Path:
    path = directory / "federation.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _load(directory: Path, api: Any) -> ApiSecuritySettings:
    return load_config(_write(directory, {"clusters": CLUSTERS, "api": api})).api


def test_absent_means_plaintext_without_token(files: Path) -> None:
    settings = load_config(_write(files, {"clusters": CLUSTERS})).api
    assert settings == ApiSecuritySettings()
    assert settings.mode == "plaintext"


def test_paths_are_relative_to_the_config_file(files: Path) -> None:
    api = {
        "tls": {"certFile": "tls.crt", "keyFile": "tls.key", "clientCAFile": str(files / "ca.crt")},
        "tokenFile": "token",
    }
    settings = _load(files, api)
    assert settings.cert_file == files / "tls.crt"
    assert settings.client_ca_file == files / "ca.crt"
    assert settings.token_file == files / "token"
    assert settings.mode == "mTLS + token"


@pytest.mark.parametrize(
    ("api", "message"),
    [
        pytest.param(
            {"tls": {"certFile": "tls.crt"}},
            "api.tls.keyFile is not set: api.tls.certFile and api.tls.keyFile go together",
            id="cert-without-key",
        ),
        pytest.param(
            {"tls": {"keyFile": "tls.key"}}, "api.tls.certFile is not set", id="key-without-cert"
        ),
        pytest.param(
            {"tls": {"clientCAFile": "ca.crt"}},
            "api.tls.clientCAFile (mutual TLS) needs api.tls.certFile and api.tls.keyFile",
            id="client-ca-without-tls",
        ),
        pytest.param({"tokenFile": "missing"}, 'api.tokenFile "', id="token-file-missing"),
        pytest.param({"tokenFile": "empty"}, "is empty: write the token into it", id="token-empty"),
        pytest.param(
            {"tls": {"certFile": "nope.crt", "keyFile": "tls.key"}},
            "api.tls.certFile",
            id="cert-file-missing",
        ),
        pytest.param({"tokenFile": 3}, "api.tokenFile must be a string", id="token-not-a-string"),
        pytest.param({"token": "x"}, "api.token is not a known field", id="unknown-key"),
        pytest.param(
            {"tls": {"caFile": "ca.crt"}}, "api.tls.caFile is not a known field", id="unknown-tls"
        ),
        pytest.param({"tls": "yes"}, "api.tls must be a mapping", id="tls-not-a-mapping"),
    ],
)
def test_bad_settings_name_the_field(files: Path, api: Any, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        _load(files, api)
    assert message in str(raised.value)


def test_servers_listen_on_loopback_by_default() -> None:
    listen = ListenSettings()
    assert listen.http.startswith("127.0.0.1:") and listen.grpc.startswith("127.0.0.1:")


def test_parse_without_base_dir_keeps_paths() -> None:
    settings = parse_api_security({"tokenFile": "rel/token"}, base_dir=None)
    assert settings.token_file == Path("rel/token")

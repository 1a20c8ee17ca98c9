"""The ``http:`` section (TLS, mutual TLS, bearer token of /metrics, ``protectProbes``):
parsing and the start-up checks, each naming the field under ``http.``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from federator.core.config_parse import load_config
from federator.core.config_security import HttpSecuritySettings
from federator.errors import ConfigError

pytestmark = pytest.mark.unit

CLUSTERS = [{"name": "c1", "kubeconfig": {"path": "kubeconfig"}}]


@pytest.fixture
def files(tmp_path: Path) -> Path:
    for name in ("tls.crt", "tls.key", "ca.crt"):
        (tmp_path / name).write_text("PEM")
    (tmp_path / "token").write_text("the-token\n")
    (tmp_path / "empty").write_text("\n")
    return tmp_path


def _load(directory: Path, http: Any) -> HttpSecuritySettings:
    doc: dict[str, Any] = {"clusters": CLUSTERS}
    if http is not None:
        doc["http"] = http
    path = directory / "federation.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load_config(path).http


def test_absent_means_open_plaintext(files: Path) -> None:
    settings = _load(files, None)
    assert settings == HttpSecuritySettings()
    assert settings.transport.mode == "plaintext" and not settings.protect_probes


def test_token_tls_and_probes(files: Path) -> None:
    http = {
        "tokenFile": "token",
        "tls": {"certFile": "tls.crt", "keyFile": "tls.key", "clientCAFile": "ca.crt"},
        "protectProbes": True,
    }
    settings = _load(files, http)
    assert settings.transport.token_file == files / "token"
    assert settings.transport.mode == "mTLS + token"
    assert settings.protect_probes


@pytest.mark.parametrize(
    ("http", "message"),
    [
        pytest.param(
            {"tls": {"certFile": "tls.crt"}},
            "http.tls.keyFile is not set: http.tls.certFile and http.tls.keyFile go together",
            id="cert-without-key",
        ),
        pytest.param(
            {"tls": {"clientCAFile": "ca.crt"}},
            "http.tls.clientCAFile (mutual TLS) needs http.tls.certFile",
            id="client-ca-without-tls",
        ),
        pytest.param({"tokenFile": "missing"}, 'http.tokenFile "', id="token-file-missing"),
        pytest.param({"tokenFile": "empty"}, "is empty: write the token into it", id="empty"),
        pytest.param(
            {"protectProbes": True}, "http.protectProbes needs http.tokenFile", id="probes-no-token"
        ),
        pytest.param(
            {"protectProbes": "yes"}, "http.protectProbes must be true or false", id="not-a-bool"
        ),
        pytest.param({"token": "x"}, "http.token is not a known field", id="unknown-key"),
    ],
)
def test_bad_settings_name_the_field(files: Path, http: Any, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        _load(files, http)
    assert message in str(raised.value)

"""The ``http:`` section's TLS, mutual TLS and bearer-token settings, and the same checks
for ``meshfed store serve``'s flags: every bad value names its setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from collectors._core.errors import ConfigError
from collectors.app.config import from_mapping
from collectors.app.http_auth import check_security, read_token


@pytest.fixture
def files(tmp_path: Path) -> Path:
    for name in ("tls.crt", "tls.key", "ca.crt"):
        (tmp_path / name).write_text("PEM")
    (tmp_path / "token").write_text("tok\n")
    (tmp_path / "empty").write_text("\n\t")
    return tmp_path


def test_full_security_section(files: Path) -> None:
    http = from_mapping(
        {
            "http": {
                "tls_cert_file": str(files / "tls.crt"),
                "tls_key_file": str(files / "tls.key"),
                "tls_client_ca_file": str(files / "ca.crt"),
                "bearer_token_file": str(files / "token"),
                "public_metrics": True,
            }
        }
    ).http
    assert http.tls is not None and http.tls.mode == "mTLS"
    assert http.public_metrics
    assert read_token(files / "token", name="x") == "tok"


def test_defaults_are_plain_and_open_on_loopback() -> None:
    config = from_mapping({})
    assert config.http.tls is None and config.http.bearer_token_file is None
    assert config.statsd is not None and config.forward is not None and config.otlp is not None
    listeners = [
        config.http.listen,
        config.statsd.udp_listen,
        config.forward.listen,
        config.otlp.grpc_listen,
        config.otlp.http_listen,
    ]
    assert all(listen.startswith("127.0.0.1:") for listen in listeners), listeners


@pytest.mark.parametrize(
    ("http", "message"),
    [
        pytest.param(
            {"tls_cert_file": "tls.crt"},
            "http.tls_key_file is not set: http.tls_cert_file and http.tls_key_file go together",
            id="cert-without-key",
        ),
        pytest.param({"tls_key_file": "tls.key"}, "http.tls_cert_file is not set", id="key-only"),
        pytest.param(
            {"tls_client_ca_file": "ca.crt"},
            "http.tls_client_ca_file (mutual TLS) needs http.tls_cert_file and http.tls_key_file",
            id="client-ca-without-tls",
        ),
        pytest.param(
            {"bearer_token_file": "missing"},
            "http.bearer_token_file '{d}/missing' is not a readable file",
            id="token-file-missing",
        ),
        pytest.param(
            {"bearer_token_file": "empty"},
            "http.bearer_token_file '{d}/empty' is empty",
            id="token-file-empty",
        ),
        pytest.param(
            {"public_metrics": "yes"}, "http.public_metrics must be true or false", id="bool"
        ),
        pytest.param({"token": "x"}, "http.token is not a known setting", id="unknown"),
    ],
)
def test_bad_settings_name_the_field(files: Path, http: dict[str, object], message: str) -> None:
    absolute = {
        k: str(files / v) if isinstance(v, str) and k != "public_metrics" else v
        for k, v in http.items()
    }
    with pytest.raises(ConfigError) as raised:
        from_mapping({"http": absolute})
    assert message.format(d=files) in str(raised.value)


def test_store_serve_flags_are_named_in_errors(files: Path) -> None:
    with pytest.raises(ConfigError, match="--tls-key is not set"):
        check_security(
            cert=("--tls-cert", files / "tls.crt"),
            key=("--tls-key", None),
            client_ca=("--tls-client-ca", None),
            token_file=("--token-file", None),
        )


@pytest.mark.parametrize(
    ("http", "message"),
    [
        pytest.param({"probe_listen": "nowhere"}, "http.probe_listen", id="probe-not-host-port"),
        pytest.param(
            {"listen": "0.0.0.0:9201", "probe_listen": "0.0.0.0:9201"},
            "http.probe_listen and http.listen both use 0.0.0.0:9201",
            id="probe-same-port-as-http",
        ),
    ],
)
def test_bad_probe_listener_names_its_setting(http: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        from_mapping({"http": http})


def test_probe_listener_parses() -> None:
    http = from_mapping({"http": {"probe_listen": "0.0.0.0:9202"}}).http
    assert http.probe_address == ("0.0.0.0", 9202)

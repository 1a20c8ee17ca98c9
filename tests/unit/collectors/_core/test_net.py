"""``parse_host_port``: the forms every listen setting accepts, and the errors that show the fix."""

from __future__ import annotations

import pytest

from collectors._core.errors import ConfigError
from collectors._core.net import parse_host_port


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("127.0.0.1:9201", ("127.0.0.1", 9201), id="ipv4"),
        pytest.param("localhost:8125", ("localhost", 8125), id="hostname"),
        pytest.param("0.0.0.0:0", ("0.0.0.0", 0), id="port-0-picks-a-free-port"),
        pytest.param("[::1]:4317", ("::1", 4317), id="ipv6-loopback"),
        pytest.param("[::]:65535", ("::", 65535), id="ipv6-any-highest-port"),
        pytest.param("[fe80::1%eth0]:80", ("fe80::1%eth0", 80), id="ipv6-with-zone"),
    ],
)
def test_accepted(value: str, expected: tuple[str, int]) -> None:
    assert parse_host_port(value, field="otlp.grpc_listen") == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param("9201", "x.listen must be host:port, e.g. 127.0.0.1:9201", id="port-only"),
        pytest.param(":4317", "e.g. 127.0.0.1:4317", id="empty-host"),
        pytest.param("localhost", "e.g. 127.0.0.1:9201", id="host-only"),
        pytest.param("h:", "a port in 0..65535, e.g. h:9201", id="empty-port"),
        pytest.param("h:http", "a port in 0..65535, e.g. h:9201", id="named-port"),
        pytest.param("h:65536", "a port in 0..65535", id="port-too-high"),
        pytest.param("h:-1", "a port in 0..65535", id="negative-port"),
        pytest.param("h: 80", "a port in 0..65535", id="space-in-port"),
        pytest.param("::1:4317", "IPv6 host goes in brackets, e.g. [::1]:4317", id="bare-ipv6"),
        pytest.param("[::1:4317", "e.g. [::1]:4317", id="unclosed-bracket"),
        pytest.param("[]:4317", "e.g. [::1]:4317", id="empty-brackets"),
        pytest.param("[::1]:x", "a port in 0..65535, e.g. [::1]:9201", id="ipv6-bad-port"),
    ],
)
def test_refused_with_field_and_example(value: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_host_port(value, field="x.listen")
    assert str(e.value).startswith("x.listen")
    assert message in str(e.value)
    assert repr(value) in str(e.value)

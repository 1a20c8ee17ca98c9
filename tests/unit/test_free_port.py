"""The tests' ``free_port``: a port the kernel offers again right after it was closed is not
handed out twice (a server's HTTP and gRPC ports once came out equal and it refused to start).
The kernel's choices are scripted here, so the case is the same on every run."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import processes


class _ScriptedSocket:
    """Binds to the next port of ``PORTS``, as the kernel might choose them."""

    PORTS: Iterator[int] = iter(())

    def __init__(self, *_args: Any) -> None:
        self._port = 0

    def __enter__(self) -> _ScriptedSocket:
        return self

    def __exit__(self, *_exc: object) -> None:
        return None

    def bind(self, _address: tuple[str, int]) -> None:
        self._port = next(self.PORTS)

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", self._port)


@pytest.fixture
def kernel(monkeypatch: pytest.MonkeyPatch) -> type[_ScriptedSocket]:
    monkeypatch.setattr(processes.socket, "socket", _ScriptedSocket)
    monkeypatch.setattr(processes, "_HANDED_OUT", type(processes._HANDED_OUT)(maxlen=16))
    return _ScriptedSocket


@pytest.mark.parametrize(
    ("offered", "calls", "expected"),
    [
        pytest.param([40001, 40002], 2, [40001, 40002], id="distinct-offers"),
        pytest.param([40001, 40001, 40003], 2, [40001, 40003], id="same-port-offered-twice"),
        pytest.param([40001, 40001, 40001, 40002], 2, [40001, 40002], id="offered-three-times"),
    ],
)
def test_a_port_is_handed_out_once(
    kernel: type[_ScriptedSocket], offered: list[int], calls: int, expected: list[int]
) -> None:
    kernel.PORTS = iter(offered)
    assert [processes.free_port() for _ in range(calls)] == expected


def test_tcp_and_udp_ports_are_remembered_apart(kernel: type[_ScriptedSocket]) -> None:
    kernel.PORTS = iter([40001, 40001])
    assert processes.free_port() == 40001
    assert processes.free_port(socket.SOCK_DGRAM) == 40001


def test_a_kernel_offering_only_handed_out_ports_is_an_error(
    kernel: type[_ScriptedSocket],
) -> None:
    kernel.PORTS = iter([40001] * 100)
    assert processes.free_port() == 40001
    with pytest.raises(RuntimeError, match="handed out recently"):
        processes.free_port()

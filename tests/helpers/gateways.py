"""Real listeners on the sandbox's east-west gateway addresses, so the federator's gateway
prober has something to reach; stopping one is a gateway failure (R4).

A pytest plugin (registered in ``tests/conftest.py``): the session fixture
``gateway_listeners`` listens on 127.0.<i>.1:``TEST_GATEWAY_PORT`` for c1..c3. Every sandbox
(the session's, the fail-static one) puts cluster *i*'s gateway at 127.0.<i>.1, so one set
serves them all. The port is not 15443 on purpose: the Istio tests run real Envoy gateways
bound to 0.0.0.0:15443, and a listener of ours on that port would keep them from starting.
The federators of the federator tests probe ``TEST_GATEWAY_PORT`` (``gatewayProbe.port``;
``tests.helpers.federator_harness`` sets it). A listener accepts and closes at once;
stopping it closes the listening socket, so probes get "connection refused".
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest

TEST_GATEWAY_PORT = 16443
"""Where the federator tests' gateways answer (``gatewayProbe.port`` in their configs)."""
CLUSTERS = ("c1", "c2", "c3")


class GatewayListener:
    """A TCP listener at ``host:port`` in a thread; ``start``/``stop`` as often as needed."""

    def __init__(self, host: str, port: int = TEST_GATEWAY_PORT) -> None:
        self.host, self.port = host, port
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._sock is not None

    def start(self) -> None:
        if self._sock is not None:
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise RuntimeError(
                f"cannot listen on the gateway address {self.host}:{self.port}: {exc}; "
                "something else (another test run, a real gateway) holds it"
            ) from exc
        sock.listen(64)
        sock.settimeout(0.2)
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
        self._thread.start()

    def _serve(self, sock: socket.socket) -> None:
        while self._sock is sock:
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.close()

    def stop(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None


@pytest.fixture(scope="session")
def gateway_listeners() -> Iterator[dict[str, GatewayListener]]:
    """``{"c1": listener at 127.0.1.1:TEST_GATEWAY_PORT, ...}``, all running."""
    made = {name: GatewayListener(f"127.0.{i}.1") for i, name in enumerate(CLUSTERS, 1)}
    try:
        for listener in made.values():
            listener.start()
        yield made
    finally:
        for listener in made.values():
            listener.stop()

"""Bad input over TCP: msgpack and gzip bombs, oversize messages (S1, S2, S4).

Each attack must close the connection, be counted by reason, keep this process's RSS growth
(sampled every 5 ms) within the bound, store nothing, and leave the server serving others.
"""

from __future__ import annotations

import asyncio
import socket
import time
import zlib
from collections.abc import Awaitable, Callable
from functools import cache
from typing import Any

import msgpack
import pytest

from tests.helpers.forward_harness import (
    MIB,
    Harness,
    eventually,
    harness_fixture,  # noqa: F401 - the ``harness`` fixture
)
from tests.helpers.rss import PeakRss


@cache
def _gzip_bomb() -> bytes:
    """Four concatenated gzip members of 256 MiB of zeros each: 1 GiB declared, ~1 MiB sent."""
    deflater = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"\0" * MIB
    member = b"".join(deflater.compress(block) for _ in range(256)) + deflater.flush()
    return msgpack.packb(["bomb", member * 4, {"chunk": "x", "compressed": "gzip"}])  # type: ignore[no-any-return]


def _attack(port: int, payload: bytes, trailer: int) -> bool:
    """Send ``payload`` (then ``trailer`` bytes of filler); True if the server closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        try:
            conn.sendall(payload)
            for _ in range(trailer // 65536):
                conn.sendall(b"a" * 65536)
            return conn.recv(100) == b""
        except (ConnectionResetError, BrokenPipeError):
            return True


def _ack_round_trip(port: int) -> Any:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(msgpack.packb(["ok", int(time.time()), {"message": "fine"}, {"chunk": "c"}]))
        return msgpack.unpackb(conn.recv(100))


@pytest.mark.parametrize(
    ("payload", "trailer", "reason", "rss_bound"),
    [
        pytest.param(b"\xdd\xff\xff\xff\xff", 0, "too_large", 16, id="array32-no-body"),
        pytest.param(b"\x91" * 10_000, 0, "bad_message", 16, id="depth-10k"),
        pytest.param(b"\xdb\xff\xff\xff\xff", 4 * MIB, "too_large", 16, id="str32-4gb"),
        pytest.param(
            msgpack.packb(["big", int(time.time()), {"message": "x" * (2 * MIB)}]),
            0,
            "too_large",
            64,
            id="oversized-message",
        ),
        pytest.param(None, 0, "too_large", 64, id="gzip-bomb-1gib"),
        pytest.param(b"\xc1", 0, "bad_message", 16, id="reserved-byte"),
    ],
)
async def test_bombs_close_the_connection(
    harness: Harness, payload: bytes | None, trailer: int, reason: str, rss_bound: int
) -> None:
    receiver = await harness.receiver()
    data = payload if payload is not None else _gzip_bomb()
    assert await asyncio.to_thread(_ack_round_trip, receiver.port) == {"ack": "c"}
    peak = PeakRss()
    closed = await asyncio.to_thread(_attack, receiver.port, data, trailer)
    growth = peak.growth()
    assert closed
    await eventually(_async_true(lambda: harness.rejected(reason) == 1), f"{reason} counted")
    assert growth <= rss_bound, f"RSS grew {growth:.1f} MiB"
    assert await asyncio.to_thread(_ack_round_trip, receiver.port) == {"ack": "c"}
    assert await harness.logs("bomb") == []


def _async_true(predicate: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return predicate()

    return check


def test_peak_rss_sampler_sees_growth() -> None:
    """The RSS guard of the bomb tests can fail: 40 MiB touched is seen as >= 30 MiB."""
    peak = PeakRss()
    block = bytearray(40 * MIB)
    for i in range(0, len(block), 4096):
        block[i] = 1
    time.sleep(0.05)
    assert peak.growth() >= 30
    del block

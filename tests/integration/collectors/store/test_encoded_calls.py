"""Pre-encoded calls (``encoded_calls.send_calls``, the write path's module calls on a single
server) against a real Redis: error replies in place, and a call that is cancelled or times
out never leaves its replies to the next caller of the pool."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.exceptions as rexc

from collectors.store.config import RedisSettings
from collectors.store.connection import RedisConnection
from collectors.store.encoded_calls import encode_prefix, send_calls


@pytest.fixture
async def pool(tmp_path: Path) -> AsyncIterator[Any]:
    connection = RedisConnection(
        settings=RedisSettings(url=None, data_dir=tmp_path / "redis", command_timeout_s=0.5)
    )
    await connection.start()
    client: Any = connection.client
    yield client.connection_pool
    await connection.shutdown()


def _call(*args: str) -> tuple[bytes, bytes]:
    return encode_prefix(args[:-1]), args[-1].encode()


async def test_error_replies_come_back_in_their_place(pool: Any) -> None:
    replies = await send_calls(
        pool, [_call("SET", "k", "v"), _call("LPUSH", "k", "x"), _call("GET", "k")]
    )
    assert replies[0] == b"OK" and replies[2] == b"v"
    assert isinstance(replies[1], rexc.ResponseError) and "WRONGTYPE" in str(replies[1])
    assert await send_calls(pool, [_call("PING", "again")]) == [b"again"]


@pytest.mark.parametrize(
    "stop",
    [
        pytest.param("cancel", id="caller-cancelled"),
        pytest.param("timeout", id="no-reply-within-command-timeout"),
    ],
)
async def test_unread_replies_never_reach_the_next_caller(pool: Any, stop: str) -> None:
    # BLPOP answers nil after 5 s: long after the cancel (0.1 s) and the timeout (0.5 s)
    blocked = asyncio.create_task(
        send_calls(pool, [_call("SET", "a", "1"), _call("BLPOP", "none", "5")])
    )
    if stop == "cancel":
        await asyncio.sleep(0.1)
        blocked.cancel()
        with pytest.raises(asyncio.CancelledError):
            await blocked
    else:
        with pytest.raises(rexc.TimeoutError):
            await blocked
    # At once, before the nil arrives (redis-py's pool would notice unread data that has
    # arrived): a reused connection would answer this PING with that nil. The bound only
    # says the check ran inside that window, with seconds to spare on a loaded machine.
    started = asyncio.get_running_loop().time()
    assert await send_calls(pool, [_call("PING", "next")]) == [b"next"]
    assert asyncio.get_running_loop().time() - started < 4.0, "ran after the nil: inconclusive"
    assert await send_calls(pool, [_call("GET", "a")]) == [b"1"]

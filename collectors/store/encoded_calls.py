"""Calls of one command with constant arguments and a large last one, pre-encoded.

The write path sends one ``MESHFED.WRITE`` per shard per write: the command, 14 constant
arguments (the shard's keys and limits) and the batch. redis-py's pipeline encodes every
argument again for every call and reads every reply under a timeout of its own; with
2,000-sample requests that was about 14 % of the collector's py-spy samples (the encoder,
the writes and the per-reply timeouts; ADR 0018, sixth-session addendum). Here the constant
part of each shard's call is encoded once (``encode_prefix``); a call is that prefix, the
batch's length and the batch itself (not copied); the replies of one round trip are read
under one deadline, the ``redis.command_timeout_s`` that a pipeline's replies get.

Single servers only: a cluster client routes each call by its key's slot, so the write path
keeps redis-py's cluster pipeline there. Connections, health checks and the retry policy are
redis-py's own (a connection's ``retry``, which in the store's clients retries nothing, as
for their pipelines). Error replies come back as ``ResponseError`` values in their place,
as from ``pipeline.execute(raise_on_error=False)``; any other failure (or a cancelled
caller) closes the connection before it returns to the pool, so unread replies never reach
the next caller.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import Any

import redis.exceptions as rexc


def encode_prefix(args: Sequence[str | bytes | int]) -> bytes:
    """The RESP of a command without its last argument, which the array header counts."""
    encoded = [a if isinstance(a, bytes) else str(a).encode() for a in args]
    parts = [b"*%d\r\n" % (len(encoded) + 1)]
    for arg in encoded:
        parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(parts)


def encode_calls(calls: Sequence[tuple[bytes, bytes]]) -> list[bytes]:
    """The wire bytes of ``(prefix, last argument)`` calls, the arguments not copied."""
    out: list[bytes] = []
    for prefix, last in calls:
        out.append(b"%s$%d\r\n" % (prefix, len(last)))
        out.append(last)
        out.append(b"\r\n")
    return out


async def send_calls(pool: Any, calls: Sequence[tuple[bytes, bytes]]) -> list[Any]:
    """Send ``calls`` in one write on a connection of ``pool``; their replies, in order."""
    if not calls:
        return []
    packed = encode_calls(calls)
    conn = await pool.get_connection()
    try:

        async def attempt() -> list[Any]:
            return await _round_trip(conn, packed, len(calls))

        async def failed(error: BaseException) -> None:
            await conn.disconnect()

        replies: list[Any] = await conn.retry.call_with_retry(attempt, failed)
        return replies
    finally:
        await pool.release(conn)


async def _round_trip(conn: Any, packed: list[bytes], count: int) -> list[Any]:
    """Write and read one round trip. No clean-up here: redis-py's connection closes itself
    when a write or read fails or is cancelled (also by the deadline), so replies left
    unread never go back to the pool with it."""
    await conn.send_packed_command(packed)
    replies: list[Any] = []
    try:
        async with asyncio.timeout(conn.socket_timeout):
            for _ in range(count):
                try:  # math.inf: no timeout per reply, the block has one
                    reply = await conn.read_response(disable_decoding=True, timeout=math.inf)
                except rexc.ResponseError as error:
                    reply = error
                replies.append(reply)
    except TimeoutError as error:  # a Redis error, so that the retry policy sees it
        raise rexc.TimeoutError(f"no reply within {conn.socket_timeout} s") from error
    return replies

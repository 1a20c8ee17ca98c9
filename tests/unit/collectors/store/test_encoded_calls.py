"""Pre-encoded module calls must be byte for byte what redis-py's own encoder sends."""

from __future__ import annotations

import pytest
from redis.asyncio.connection import Connection

from collectors.store.encoded_calls import encode_calls, encode_prefix


@pytest.mark.parametrize(
    ("args", "last"),
    [
        pytest.param(["MESHFED.WRITE", "m:{0}:series", b"\x00\xffraw", 5], b"batch", id="mixed"),
        pytest.param(["PING"], b"", id="empty-last-argument"),
        pytest.param(["SET", "clé"], b"\r\n$3\r\n" * 3, id="utf8-and-resp-lookalikes"),
        pytest.param(["X", *(str(i) for i in range(20))], bytes(70_000), id="long-bulk"),
    ],
)
def test_encoded_call_is_what_redis_py_sends(args: list[str | bytes | int], last: bytes) -> None:
    expected = b"".join(Connection().pack_command(*args, last))
    assert b"".join(encode_calls([(encode_prefix(args), last)])) == expected


def test_calls_follow_each_other_and_keep_the_last_argument_uncopied() -> None:
    first, second = bytes(b"one" * 10), bytes(b"two" * 10)
    packed = encode_calls([(encode_prefix(["A", "k"]), first), (encode_prefix(["B"]), second)])
    assert b"".join(packed) == b"".join(
        [*Connection().pack_command("A", "k", first), *Connection().pack_command("B", second)]
    )
    assert any(part is first for part in packed) and any(part is second for part in packed)

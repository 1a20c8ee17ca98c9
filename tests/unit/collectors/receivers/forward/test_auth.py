"""The Forward handshake's PING checks (right/wrong key, users, malformed) and PONG replies."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from collectors.receivers.forward import auth as forward_auth
from collectors.receivers.forward.config import ForwardUser

T = 1_700_000_000

CHALLENGE = forward_auth.Challenge(nonce=b"n" * 16, auth_salt=b"")
USERS_CHALLENGE = forward_auth.Challenge(nonce=b"n" * 16, auth_salt=b"s" * 16)
ALICE = (ForwardUser(username="alice", password="pw"),)


@pytest.mark.parametrize(
    ("challenge", "ping", "users", "ok"),
    [
        pytest.param(
            CHALLENGE,
            forward_auth.client_ping(challenge=CHALLENGE, client_hostname="c", shared_key="k"),
            (),
            True,
            id="right-key",
        ),
        pytest.param(
            CHALLENGE,
            forward_auth.client_ping(challenge=CHALLENGE, client_hostname="c", shared_key="x"),
            (),
            False,
            id="wrong-key",
        ),
        pytest.param(
            CHALLENGE,
            forward_auth.client_ping(challenge=CHALLENGE, client_hostname="srv", shared_key="k"),
            (),
            False,
            id="same-hostname",
        ),
        pytest.param(
            USERS_CHALLENGE,
            forward_auth.client_ping(
                challenge=USERS_CHALLENGE,
                client_hostname="c",
                shared_key="k",
                username="alice",
                password="pw",
            ),
            ALICE,
            True,
            id="right-user",
        ),
        pytest.param(
            USERS_CHALLENGE,
            forward_auth.client_ping(
                challenge=USERS_CHALLENGE,
                client_hostname="c",
                shared_key="k",
                username="alice",
                password="bad",
            ),
            ALICE,
            False,
            id="wrong-password",
        ),
        pytest.param(CHALLENGE, ["PING", 1, 2, 3, 4, 5], (), False, id="malformed-ping"),
        pytest.param(CHALLENGE, ["app", T, {}], (), False, id="data-instead-of-ping"),
    ],
)
def test_handshake(
    challenge: forward_auth.Challenge, ping: Any, users: tuple[ForwardUser, ...], ok: bool
) -> None:
    result = forward_auth.check_ping(
        ping, challenge=challenge, shared_key="k", self_hostname="srv", users=users
    )
    pong = msgpack.unpackb(result.reply)
    assert result.ok is ok and pong[0] == "PONG" and pong[1] is ok and len(pong) == 5
    if ok:
        assert pong[3] == "srv" and len(pong[4]) == 128

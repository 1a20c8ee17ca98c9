"""The Forward handshake (HELO → PING → PONG) as pure functions over decoded messages.

Kept apart from the socket loop so every branch is unit-testable. Digests follow Fluentd's
in_forward: the client proves ``sha512_hex(salt + client_hostname + nonce + shared_key)``
(and, when users are configured, ``sha512_hex(auth_salt + username + password)``); the server
answers ``sha512_hex(salt + server_hostname + nonce + shared_key)``. A failed check answers
``["PONG", false, reason, "", ""]`` and the caller closes the connection (S5).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

import msgpack

from collectors.receivers.forward.config import ForwardUser


@dataclass(frozen=True, slots=True)
class Challenge:
    """What the server sent in HELO (and needs again to check PING)."""

    nonce: bytes
    auth_salt: bytes
    """Empty when no users are configured (the client then sends empty user fields)."""


@dataclass(frozen=True, slots=True)
class PongResult:
    """The PONG to send, and whether the client may go on sending events."""

    ok: bool
    reply: bytes
    reason: str = ""


def _bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    raise TypeError(type(value).__name__)


def _sha512_hex(*parts: bytes) -> str:
    digest = hashlib.sha512()
    for part in parts:
        digest.update(part)
    return digest.hexdigest()


def new_challenge(*, with_users: bool) -> Challenge:
    return Challenge(
        nonce=secrets.token_bytes(16), auth_salt=secrets.token_bytes(16) if with_users else b""
    )


def helo(challenge: Challenge, *, keepalive: bool = True) -> bytes:
    """``["HELO", {nonce, auth, keepalive}]`` with nonce and auth salt as msgpack bin."""
    options = {"nonce": challenge.nonce, "auth": challenge.auth_salt, "keepalive": keepalive}
    return msgpack.packb(["HELO", options], use_bin_type=True)  # type: ignore[no-any-return]


def _refuse(reason: str) -> PongResult:
    reply = msgpack.packb(["PONG", False, reason, "", ""], use_bin_type=True)
    return PongResult(ok=False, reply=reply, reason=reason)


def check_ping(
    ping: Any,
    *,
    challenge: Challenge,
    shared_key: str,
    self_hostname: str,
    users: tuple[ForwardUser, ...],
) -> PongResult:
    """Verify a decoded PING; the PONG to send either way."""
    if not isinstance(ping, list) or len(ping) != 6 or ping[0] != "PING":
        return _refuse("expected PING")
    _, hostname, salt, digest, username, password_digest = ping
    try:
        hostname_b, salt_b, digest_b = _bytes(hostname), _bytes(salt), _bytes(digest)
        username_b, password_b = _bytes(username), _bytes(password_digest)
    except TypeError:
        return _refuse("malformed PING")
    if hostname_b == self_hostname.encode():
        return _refuse("same hostname between input and output: invalid configuration")
    key = shared_key.encode()
    expected = _sha512_hex(salt_b, hostname_b, challenge.nonce, key)
    if not hmac.compare_digest(expected.encode(), digest_b):
        return _refuse("shared_key mismatch")
    if users:
        matched = False
        for user in users:
            want = _sha512_hex(challenge.auth_salt, user.username.encode(), user.password.encode())
            same_user = hmac.compare_digest(user.username.encode(), username_b)
            matched |= same_user and hmac.compare_digest(want.encode(), password_b)
        if not matched:
            return _refuse("username/password mismatch")
    server_digest = _sha512_hex(salt_b, self_hostname.encode(), challenge.nonce, key)
    reply = msgpack.packb(["PONG", True, "", self_hostname, server_digest], use_bin_type=True)
    return PongResult(ok=True, reply=reply)


def client_ping(
    *,
    challenge: Challenge,
    client_hostname: str,
    shared_key: str,
    salt: bytes = b"0123456789abcdef",
    username: str = "",
    password: str = "",
) -> list[Any]:
    """The PING a well-behaved client sends (as fluent-logger computes it): tests and bench."""
    digest = _sha512_hex(salt, client_hostname.encode(), challenge.nonce, shared_key.encode())
    password_digest = (
        _sha512_hex(challenge.auth_salt, username.encode(), password.encode())
        if challenge.auth_salt
        else ""
    )
    return ["PING", client_hostname, salt, digest, username, password_digest]

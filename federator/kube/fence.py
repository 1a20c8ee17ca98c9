"""The write fence's port: what a ``KubeClient`` asks before a write request leaves (R5).

``WriteFence`` is implemented by the leader elector (``federator.kube.leader``);
``fence_trace`` is the httpcore trace hook that asks it again at the last moment, once a
connection is ready and right before the request's head and body are written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class WriteFence(Protocol):
    """Decides, just before a write request is sent, whether this process may write."""

    def check(self, what: str) -> None:
        """Return if the write may be sent; raise ``NotLeaderError`` otherwise."""
        ...


_FENCED_STEPS = ("send_request_headers.started", "send_request_body.started")


def fence_trace(fence: WriteFence, what: str) -> Any:
    """An httpcore trace hook asking ``fence`` again once a connection is ready, right before
    the request's head and again before its body are written: a process paused while it waited
    for a connection (or between head and body: the connection is closed, the server drops the
    incomplete request) sends nothing after it resumes without the Lease."""

    async def trace(event: str, info: Mapping[str, Any]) -> None:
        if event.endswith(_FENCED_STEPS):
            fence.check(what)

    return trace

"""The write fence's port: what a ``KubeClient`` asks before a write request leaves (R5).

``WriteFence`` is implemented by the leader elector (``federator.kube.leader``);
``fence_trace`` is the httpcore trace hook that asks it again at the last moment, once a
connection is ready and right before the request's head and body are written.

A check on the client always leaves a gap: a process stopped after its last check and before
the bytes reach the kernel sends them when it resumes. ``server_deadline_seconds`` closes it
on the apiserver: every fenced write carries it as the ``timeout`` query parameter, and the
apiserver gives up on a request that deadline after its head arrived (``WithRequestDeadline``:
its context expires, so nothing is stored after it; the client gets 504).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class WriteFence(Protocol):
    """Decides, just before a write request is sent, whether this process may write."""

    def check(self, what: str) -> None:
        """Return if the write may be sent; raise ``NotLeaderError`` otherwise."""
        ...

    @property
    def server_deadline_seconds(self) -> float:
        """How long the apiserver may work on a write, counted from when its head arrived.
        A write whose head left while ``check`` passed is then finished (or dropped) before
        any other writer may start."""
        ...


def go_duration(seconds: float) -> str:
    """``seconds`` as a Go ``time.ParseDuration`` string (the apiserver's ``timeout``)."""
    return f"{max(1, round(seconds * 1000))}ms"


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

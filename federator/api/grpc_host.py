"""The status API's gRPC transport: servicers served over ``grpclib`` on the event loop.

Why not grpcio, which the collectors and every client use: in a process that runs for weeks
at the published scale, grpcio's C core is the largest single item of resident memory
(importing it costs ~11 MiB, measured; its completion-queue and event-engine threads add
their own stacks and malloc arenas), for an API that serves a few requests a minute.
grpclib is HTTP/2 in Python (``h2``) on the federator's own event loop: ~3 MiB to import.
Clients see standard gRPC either way (grpcio, grpcurl and kubelet's gRPC probe all talk to
it in the tests).

This module turns a servicer (methods named as in the proto, ``(request, call)`` →
response, or an async iterator of responses for server streaming, or ``(requests, call)``
for bidirectional streaming) into grpclib handlers, and applies what grpcio's server
options did: a request size limit (RESOURCE_EXHAUSTED, read before the body is buffered),
a bound on concurrent RPCs (RESOURCE_EXHAUSTED), and the caller check (``Gate``) before
the servicer runs. A servicer signals a status by raising ``GRPCError``.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, NoReturn, Protocol

from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import DecodeError, Message
from grpclib.const import Cardinality, Handler, Status
from grpclib.exceptions import GRPCError
from grpclib.server import Stream

_HEADER = struct.Struct(">?I")
"""The gRPC message prefix: compressed flag, length (gRPC over HTTP/2, Length-Prefixed-Message)."""


def abort(code: Status, details: str) -> NoReturn:
    """End the call with ``code`` (what a servicer does instead of returning)."""
    raise GRPCError(code, details)


class Gate(Protocol):
    """Who may call: raises ``GRPCError`` (UNAUTHENTICATED) to refuse a call."""

    def check(self, method: str, metadata: Any) -> None: ...


class Call:
    """What a servicer may read of its call besides the request."""

    __slots__ = ("_stream",)

    def __init__(self, stream: Stream[Any, Any]) -> None:
        self._stream = stream

    def time_remaining(self) -> float | None:
        """Seconds left before the client's deadline, None without one."""
        deadline = self._stream.deadline
        return None if deadline is None else deadline.time_remaining()


@dataclass(frozen=True, slots=True)
class Limits:
    """What every call is held to."""

    max_request_bytes: int
    max_concurrent_rpcs: int


class Service:
    """A grpclib service (its ``__mapping__``) built from a servicer and its proto."""

    def __init__(self, mapping: dict[str, Handler]) -> None:
        self._mapping = mapping

    def __mapping__(self) -> dict[str, Handler]:  # grpclib's service protocol
        return self._mapping


class Host:
    """Builds services that share one concurrency count, one gate and one set of limits."""

    def __init__(self, limits: Limits, gate: Gate | None = None) -> None:
        self._limits = limits
        self._gate = gate
        self.active = 0
        """RPCs being served now (streams included)."""

    def service(
        self, descriptor: ServiceDescriptor, module: ModuleType, servicer: object
    ) -> Service:
        """Handlers for every method of ``descriptor``, whose messages are in ``module``."""
        mapping = {}
        for method in descriptor.methods:
            path = f"/{descriptor.full_name}/{method.name}"
            func = getattr(servicer, method.name)
            request = getattr(module, method.input_type.name)
            reply = getattr(module, method.output_type.name)
            cardinality = _cardinality(method)
            mapping[path] = Handler(
                self._handler(path, cardinality, func, request), cardinality, request, reply
            )
        return Service(mapping)

    def _handler(
        self, path: str, cardinality: Cardinality, func: Callable[..., Any], request: type[Message]
    ) -> Callable[[Stream[Any, Any]], Awaitable[None]]:
        limit = self._limits.max_request_bytes

        async def handle(stream: Stream[Any, Any]) -> None:
            first: Message | None = None
            if cardinality.client_streaming:
                # A client that streams is still writing when a refusal would come at once;
                # grpcio then reports its failed write (INTERNAL), not our status. After its
                # first message it reads, and sees the status.
                first = await read_request(stream, request, limit)
            if self._gate is not None:
                self._gate.check(path, stream.metadata)
            if self.active >= self._limits.max_concurrent_rpcs:
                raise GRPCError(
                    Status.RESOURCE_EXHAUSTED,
                    f"too many concurrent RPCs (max {self._limits.max_concurrent_rpcs})",
                )
            self.active += 1
            try:
                call = Call(stream)
                if cardinality.client_streaming:
                    result = func(_requests(stream, request, limit, first), call)
                else:
                    message = await read_request(stream, request, limit)
                    if message is None:
                        raise GRPCError(Status.INVALID_ARGUMENT, "the call carried no request")
                    result = func(message, call)
                await _reply(stream, cardinality, result)
            finally:
                self.active -= 1

        return handle


async def _reply(stream: Stream[Any, Any], cardinality: Cardinality, result: Any) -> None:
    if not cardinality.server_streaming:
        await stream.send_message(await result)
        return
    replies: AsyncGenerator[Message, None] = result
    async with contextlib.aclosing(replies):
        async for reply in replies:
            await stream.send_message(reply)


async def _requests(
    stream: Stream[Any, Any], request_type: type[Message], limit: int, first: Message | None
) -> AsyncIterator[Message]:
    request = first
    while request is not None:
        yield request
        request = await read_request(stream, request_type, limit)


async def read_request(
    stream: Stream[Any, Any], request_type: type[Message], limit: int
) -> Message | None:
    """The next request message, None at the end of the client's stream.

    Reads the 5-byte prefix itself (grpclib has no receive limit and would buffer whatever
    length a client announces) and refuses a message over ``limit`` before reading it."""
    raw = stream._stream  # grpclib's HTTP/2 stream: its recv_message is unbounded
    head = await raw.recv_data(_HEADER.size)
    if not head:
        return None
    compressed, size = _HEADER.unpack(head)
    if compressed:
        raise GRPCError(Status.UNIMPLEMENTED, "compressed requests are not accepted; send identity")
    if size > limit:
        raise GRPCError(
            Status.RESOURCE_EXHAUSTED,
            f"request of {size} bytes is over this server's limit of {limit}",
        )
    body = await raw.recv_data(size) if size else b""
    if len(body) != size:
        raise GRPCError(Status.INVALID_ARGUMENT, "the request message was cut short")
    try:
        return request_type.FromString(body)
    except DecodeError as exc:
        raise GRPCError(
            Status.INVALID_ARGUMENT, f"not a valid {request_type.DESCRIPTOR.full_name}"
        ) from exc


def _cardinality(method: MethodDescriptor) -> Cardinality:
    return {
        (False, False): Cardinality.UNARY_UNARY,
        (False, True): Cardinality.UNARY_STREAM,
        (True, False): Cardinality.STREAM_UNARY,
        (True, True): Cardinality.STREAM_STREAM,
    }[(method.client_streaming, method.server_streaming)]

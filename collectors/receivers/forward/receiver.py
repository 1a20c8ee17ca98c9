"""Fluentd Forward receiver: TCP (or TLS) on one port, UDP heartbeats on the same port number.

Per connection, one loop: read at most ``read_chunk_bytes`` → feed a bounded msgpack
unpacker → for each complete message: parse (pure,
:mod:`collectors.receivers.forward.protocol.message`), write its records to the sink in
batches of ``max_batch_records`` and only then answer ``{"ack": chunk}``. Nothing more is
read from the socket while a write is pending, so a slow store throttles senders through TCP
itself. Every refusal is the protocol's own: a store that is down (or the memory limit)
means no ack and the connection closed, so a client with ``require_ack_response`` resends;
bad input (malformed msgpack, bombs, oversize messages, failed handshake) closes the
connection. Invalid single events inside a valid message are skipped and counted, and the
message is acked, as Fluentd's ``skip_invalid_event`` does, so a client never resends a
message that can never succeed. Everything is counted
(:class:`collectors._core.selfmetrics.ReceiverMetrics`), nothing is logged per item."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from typing import Any

import msgpack

from collectors._core.component import TelemetrySink
from collectors._core.errors import (
    LimitExceededError,
    MemoryLimitError,
    PermanentError,
    RetryableError,
    StoreUnavailableError,
)
from collectors._core.log_batch import LogBatch
from collectors._core.selfmetrics import ReceiverMetrics
from collectors._kits.tasks import cancel_and_wait
from collectors.receivers.forward import auth as forward_auth
from collectors.receivers.forward.config import ForwardSettings
from collectors.receivers.forward.protocol import msgpack_safe
from collectors.receivers.forward.protocol.message import decode_message, entry_batches
from collectors.receivers.forward.protocol.record import to_log_columns

log = logging.getLogger(__name__)

SIGNAL = "logs"
_UDP_MAX_DATAGRAM = 1024


class _ClosedError(Exception):
    """The connection is to be closed quietly (peer gone, idle, shutdown, refused)."""


def _retry_reason(exc: RetryableError) -> str:
    if isinstance(exc, StoreUnavailableError):
        return "store_unavailable"
    return "memory_limit" if isinstance(exc, MemoryLimitError) else "retryable"


class _HeartbeatProtocol(asyncio.DatagramProtocol):
    """Answers every small datagram with ``b"\\0"``, as Fluentd's in_forward does."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if self.transport is not None and len(data) <= _UDP_MAX_DATAGRAM:
            self.transport.sendto(b"\0", addr)


class ForwardReceiver:
    """The Forward receiver; a :class:`collectors._core.component.Component`."""

    def __init__(
        self, *, settings: ForwardSettings, sink: TelemetrySink, metrics: ReceiverMetrics
    ) -> None:
        settings.validate()
        self._settings = settings
        self._limits = settings.limits
        self._sink = sink
        self._metrics = metrics
        self._server: asyncio.Server | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._connections: dict[asyncio.Task[Any], bool] = {}
        """Connection tasks → whether a message is being written (not to be cancelled)."""
        self._closing = False
        self._in_flight = 0
        self._port = 0

    @property
    def port(self) -> int:
        """The bound TCP (and UDP) port; useful when ``listen`` asked for port 0."""
        return self._port

    def _ssl_context(self) -> ssl.SSLContext | None:
        s = self._settings
        if s.tls_cert_file is None or s.tls_key_file is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(s.tls_cert_file), str(s.tls_key_file))
        if s.tls_client_ca_file is not None:
            context.load_verify_locations(str(s.tls_client_ca_file))
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    async def start(self) -> None:
        """Listen (TCP/TLS and the UDP heartbeat); returns once both serve. Idempotent."""
        if self._server is not None:
            return
        self._closing = False
        host, port = self._settings.address
        self._server = await asyncio.start_server(
            self._handle,
            host,
            port,
            ssl=self._ssl_context(),
            limit=self._settings.read_chunk_bytes,
            reuse_address=True,
        )
        self._port = int(self._server.sockets[0].getsockname()[1])
        if self._settings.udp_heartbeat:
            loop = asyncio.get_running_loop()
            transport, _ = await loop.create_datagram_endpoint(
                _HeartbeatProtocol, local_addr=(host, self._port)
            )
            self._udp = transport
        log.info(
            "forward receiver listening on %s:%d (%s%s)",
            host,
            self._port,
            "TLS" if self._settings.tls_enabled else "TCP",
            ", shared key" if self._settings.shared_key else "",
        )

    async def shutdown(self) -> None:
        """Stop accepting, let messages being written finish and be acked, close the rest."""
        server, self._server = self._server, None
        if server is None:
            return
        self._closing = True
        server.close()
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        for task, busy in list(self._connections.items()):
            if not busy:
                task.cancel()
        pending = list(self._connections)
        if pending:
            _, late = await asyncio.wait(pending, timeout=self._settings.shutdown_grace_s)
            # not stored within the grace: no ack was sent, so those clients resend; a
            # cancelled connection's own cleanup is bounded (1 s to close its socket)
            await cancel_and_wait(late)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(server.wait_closed(), timeout=5.0)
        log.info("forward receiver stopped (%d connections were open)", len(pending))

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if self._closing or len(self._connections) >= self._settings.max_connections:
            self._metrics.rejected("too_many_connections" if not self._closing else "shutting_down")
            writer.close()
            return
        self._connections[task] = False
        try:
            await self._serve(task, reader, writer)
        except _ClosedError:
            pass
        except LimitExceededError:
            self._metrics.rejected("too_large")
        except PermanentError:
            self._metrics.rejected("bad_message")
        except RetryableError as exc:
            self._metrics.rejected(_retry_reason(exc))
        except (ConnectionError, OSError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        except asyncio.CancelledError:
            if not self._closing:
                raise
        except Exception:  # a bug: count it, keep serving the others
            self._metrics.rejected("internal_error")
            log.exception("forward connection failed unexpectedly")
        finally:
            self._connections.pop(task, None)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), timeout=1.0)

    async def _read(self, reader: asyncio.StreamReader, timeout: float) -> bytes:
        try:
            async with asyncio.timeout(timeout):
                data = await reader.read(self._settings.read_chunk_bytes)
        except TimeoutError:
            raise _ClosedError from None
        if not data:
            raise _ClosedError
        return data

    async def _serve(
        self, task: asyncio.Task[Any], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        s = self._settings
        unpacker = msgpack_safe.new_unpacker(self._limits.msgpack)
        if s.shared_key is not None:
            await self._handshake(reader, writer, unpacker)
        while not self._closing:
            msgpack_safe.feed(unpacker, await self._read(reader, s.idle_timeout_s))
            for obj in msgpack_safe.objects(unpacker):
                if obj is None:  # a TCP heartbeat
                    continue
                self._connections[task] = True
                try:
                    ack = await self._process(obj)
                    if ack is not None:
                        writer.write(ack)
                        await writer.drain()
                finally:
                    self._connections[task] = False

    async def _handshake(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, unpacker: Any
    ) -> None:
        s = self._settings
        assert s.shared_key is not None
        challenge = forward_auth.new_challenge(with_users=bool(s.users))
        writer.write(forward_auth.helo(challenge))
        await writer.drain()
        deadline = time.monotonic() + s.handshake_timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self._metrics.rejected("unauthorized")
                raise _ClosedError
            msgpack_safe.feed(unpacker, await self._read(reader, left))
            ping = next(msgpack_safe.objects(unpacker), None)
            if ping is not None:
                break
        result = forward_auth.check_ping(
            ping,
            challenge=challenge,
            shared_key=s.shared_key,
            self_hostname=s.self_hostname,
            users=s.users,
        )
        writer.write(result.reply)
        await writer.drain()
        if not result.ok:
            self._metrics.rejected("unauthorized")
            raise _ClosedError

    async def _process(self, obj: Any) -> bytes | None:
        """Store one message's records; the ack to send (or None). Raises to close."""
        message = decode_message(obj)
        now_ns = time.time_ns()
        invalid = 0
        max_depth = self._limits.max_depth
        tag = message.tag
        try:
            for batch in entry_batches(message, self._limits, self._settings.max_batch_records):
                columns, skipped = to_log_columns(
                    tag, batch, now_ns=now_ns, max_depth=max_depth, observed_ns=now_ns
                )
                # Why: kept while the write is awaited, the decoded entry lists would survive
                # into the GC's older generations and bring its full collections sooner; the
                # columns hold all that is kept.
                batch.clear()
                invalid += skipped
                if len(columns):
                    await self._write(LogBatch([columns]))
        finally:
            if invalid:
                self._metrics.rejected("invalid_event", invalid)
        if message.chunk is None:
            return None
        return msgpack.packb({"ack": message.chunk}, use_bin_type=True)  # type: ignore[no-any-return]

    async def _write(self, batch: LogBatch) -> None:
        n = len(batch)
        self._metrics.received(SIGNAL, n)
        self._in_flight += n
        self._metrics.set_queue_depth(self._in_flight)
        started = time.monotonic()
        try:
            await self._sink.write_logs(batch)
        finally:
            self._in_flight -= n
            self._metrics.set_queue_depth(self._in_flight)
        self._metrics.observe_batch(time.monotonic() - started)
        self._metrics.stored(SIGNAL, n)

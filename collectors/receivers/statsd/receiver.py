"""The StatsD receiver: UDP and TCP servers and the flush timer.

Data flow: datagrams -> :class:`~collectors.receivers.statsd.aggregate.Accumulator` (in
``udp_workers`` reader processes sharing one socket, or in this event loop) -> at every
flush boundary (multiples of the interval since the epoch) the partials are merged and
flushed into samples stamped with the flush time -> the sink (the pipeline), through
:class:`~collectors.receivers.statsd.delivery.FlushDelivery`: one task per flush hands it
over in batches; a batch the pipeline refuses is dropped and counted, never retried (StatsD
has no acknowledgement, and the pipeline's bounded queue is the only place samples wait).
The flush timer never waits for the store. Shutdown stops the listeners, drains the
workers' sockets, performs a final flush and waits (bounded by ``shutdown_grace_s``) for
the flushes still being handed over, then cancels them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import time
from collections.abc import Mapping
from pathlib import Path

from collectors._core.component import TelemetrySink
from collectors._core.selfmetrics import ReceiverMetrics
from collectors._kits.tasks import cancel_and_wait
from collectors.receivers.statsd.aggregate import Accumulator, Aggregator, FlushResult, Partial
from collectors.receivers.statsd.config import StatsdSettings
from collectors.receivers.statsd.delivery import FlushDelivery
from collectors.receivers.statsd.workers import WorkerLimits, WorkerPool

log = logging.getLogger(__name__)

_READ_BYTES = 65_536


def udp_socket_drops(sock: socket.socket) -> int | None:
    """Datagrams the kernel dropped on ``sock`` (full receive buffer), from /proc/net/udp*."""
    inode = str(os.fstat(sock.fileno()).st_ino)
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if len(fields) > 12 and fields[9] == inode:
                    return int(fields[12])
    return None


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, acc: Accumulator) -> None:
        self._acc = acc

    def datagram_received(self, data: bytes, addr: object) -> None:
        self._acc.ingest(data, time.monotonic_ns())


class StatsdReceiver:
    """StatsD/DogStatsD over UDP and TCP, aggregated like the reference daemon."""

    def __init__(
        self,
        *,
        settings: StatsdSettings,
        sink: TelemetrySink,
        metrics: ReceiverMetrics,
        resource: Mapping[str, str] | None = None,
    ) -> None:
        settings.validate()
        self._s = settings
        self._metrics = metrics
        self._resource = dict(resource or {})
        self._acc = Accumulator(
            max_keys=settings.max_keys,
            max_values=settings.max_values,
            max_events=settings.max_events,
        )
        self._aggregator = Aggregator(settings=settings.aggregator(), resource=self._resource)
        self._delivery = FlushDelivery(
            sink=sink, metrics=metrics, settings=settings, resource=self._resource
        )
        self._udp: socket.socket | None = None
        self._udp_transport: asyncio.DatagramTransport | None = None
        self._pool: WorkerPool | None = None
        self._tcp: asyncio.Server | None = None
        self._tcp_writers: set[asyncio.StreamWriter] = set()
        self._flush_task: asyncio.Task[None] | None = None
        self._flush_lock = asyncio.Lock()
        self._kernel_drops = 0
        self._state = "new"
        self.receive_buffer = 0
        """The granted ``SO_RCVBUF`` in bytes (Linux reports twice the requested value)."""
        self.udp_address: tuple[str, int] | None = None
        self.tcp_address: tuple[str, int] | None = None

    @property
    def worker_pids(self) -> list[int]:
        return self._pool.pids if self._pool is not None else []

    async def start(self) -> None:
        """Bind the sockets, start the workers and the flush timer; idempotent."""
        if self._state != "new":
            return
        self._state = "running"
        loop = asyncio.get_running_loop()
        udp, tcp = self._s.udp_address, self._s.tcp_address
        if udp is not None:
            self._udp = self._bind_udp(*udp)
            self.udp_address = self._udp.getsockname()[:2]
            if self._s.udp_workers > 0:
                limits = WorkerLimits(
                    self._s.max_keys,
                    self._s.max_values,
                    self._s.max_events,
                    self._s.max_datagram_bytes,
                )
                self._pool = WorkerPool(sock=self._udp, count=self._s.udp_workers, limits=limits)
                await asyncio.to_thread(self._pool.start)
            else:
                self._udp_transport, _ = await loop.create_datagram_endpoint(
                    lambda: _UdpProtocol(self._acc), sock=self._udp
                )
        if tcp is not None:
            self._tcp = await asyncio.start_server(self._tcp_client, *tcp, limit=_READ_BYTES)
            self.tcp_address = self._tcp.sockets[0].getsockname()[:2]
        self._flush_task = asyncio.create_task(self._flush_loop(), name="statsd-flush")
        log.info(
            "statsd receiver: udp %s (%d workers, SO_RCVBUF %d bytes), tcp %s, flush every %gs",
            self.udp_address,
            self._s.udp_workers,
            self.receive_buffer,
            self.tcp_address,
            self._s.flush_interval_s,
        )

    def _bind_udp(self, host: str, port: int) -> socket.socket:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        force = getattr(socket, "SO_RCVBUFFORCE", socket.SO_RCVBUF)
        try:  # beyond net.core.rmem_max when the process may (CAP_NET_ADMIN)
            sock.setsockopt(socket.SOL_SOCKET, force, self._s.receive_buffer_bytes)
        except PermissionError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._s.receive_buffer_bytes)
        self.receive_buffer = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        sock.bind((host, port))
        sock.setblocking(self._s.udp_workers > 0)
        return sock

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._tcp_writers) >= self._s.max_tcp_connections:
            self._metrics.rejected("too_many_connections")
            writer.close()
            return
        self._tcp_writers.add(writer)
        buffer = b""
        try:
            while data := await reader.read(_READ_BYTES):
                buffer += data
                cut = buffer.rfind(b"\n")
                if cut >= 0:
                    self._acc.ingest(buffer[: cut + 1], time.monotonic_ns())
                    buffer = buffer[cut + 1 :]
                if len(buffer) > self._s.max_tcp_line_bytes:
                    self._metrics.rejected("too_large")
                    buffer = b""
                    break
            if buffer:
                self._acc.ingest(buffer, time.monotonic_ns())
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._tcp_writers.discard(writer)
            writer.close()

    async def _flush_loop(self) -> None:
        interval = self._s.flush_interval_s
        while True:
            now = time.time()
            boundary = (math.floor(now / interval) + 1) * interval
            await asyncio.sleep(boundary - now)
            try:
                await self._flush(round(boundary * 1000), final=False)
            except Exception:
                log.exception("statsd flush failed")

    async def _flush(self, now_ms: int, *, final: bool) -> None:
        async with self._flush_lock:
            partials: list[Partial] = []
            if self._pool is not None:
                timeout = min(5.0, self._s.flush_interval_s)
                if final:
                    partials = await asyncio.to_thread(self._pool.stop, timeout)
                    self._pool = None
                else:
                    partials = await asyncio.to_thread(self._pool.collect, "take", timeout)
            partials.append(self._acc.take())
            self._aggregator.merge(partials)
            result = self._aggregator.flush(now_ms)
            self._count(result)
            self._delivery.offer(result)

    def _count(self, result: FlushResult) -> None:
        m = self._metrics
        if result.lines:
            m.received("metrics", result.lines)
        if result.bad_lines:
            m.rejected("bad_line", result.bad_lines)
        if result.dropped:
            m.dropped("memory_limit", result.dropped)
        if result.events:
            m.received("logs", len(result.events))
        if self._udp is not None and self._udp.fileno() >= 0:
            drops = udp_socket_drops(self._udp)
            if drops is not None and drops > self._kernel_drops:
                m.dropped("socket_buffer", drops - self._kernel_drops)
                self._kernel_drops = drops

    async def flush(self) -> None:
        """Flush now (between the timer's flushes); stamped with the current time."""
        await self._flush(round(time.time() * 1000), final=False)

    async def shutdown(self) -> None:
        """Stop listening, drain the sockets, final flush, wait for the writes; idempotent."""
        if self._state != "running":
            self._state = "stopped"
            return
        self._state = "stopping"
        if self._tcp is not None:
            self._tcp.close()
            for writer in list(self._tcp_writers):
                writer.close()
        flush_task, self._flush_task = self._flush_task, None
        if flush_task is not None:
            await cancel_and_wait([flush_task])
        if self._udp_transport is not None:
            self._udp_transport.close()
        await self._flush(round(time.time() * 1000), final=True)
        await self._delivery.drain(self._s.shutdown_grace_s)
        if self._tcp is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._tcp.wait_closed(), 2)
        if self._udp is not None:
            self._udp.close()
        self._state = "stopped"

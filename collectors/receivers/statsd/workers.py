"""UDP reader processes: parse and pre-aggregate StatsD datagrams off the main process's core.

All workers read ONE shared UDP socket (handed to each spawned process). A blocking
``recv`` on a shared socket is an exclusive wait in Linux, so each datagram wakes a single
worker and even one busy sender spreads over every core — unlike ``SO_REUSEPORT``, which
hashes a sender to one socket. ``SO_RCVTIMEO`` bounds each ``recv`` so a worker answers the
main process within ~20 ms: on ``take`` it sends its :class:`Partial` (raw timer values
included: exact percentiles cannot be merged from summaries) and starts a new one; on
``stop`` it first drains what the socket still holds.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import signal
import socket
import struct
import time
from dataclasses import dataclass

from collectors.receivers.statsd.aggregate import Accumulator, Partial

_POLL_S = 0.02
_RECV_TIMEOUT_US = 20_000
_DRAIN_MAX_DATAGRAMS = 1_000_000


@dataclass(frozen=True, slots=True)
class WorkerLimits:
    max_keys: int
    max_values: int
    max_events: int
    max_datagram_bytes: int


def worker_main(
    sock: socket.socket, conn: multiprocessing.connection.Connection, limits: WorkerLimits
) -> None:
    """A worker's loop (the target of a spawned process); it ends on ``stop`` or when the
    main process goes away (its pipe closes)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides when to stop
    acc = Accumulator(
        max_keys=limits.max_keys, max_values=limits.max_values, max_events=limits.max_events
    )
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, _RECV_TIMEOUT_US))
    recv, size = sock.recv, limits.max_datagram_bytes
    ingest, clock, poll = acc.ingest, time.monotonic_ns, conn.poll
    next_check = 0.0
    while True:
        try:
            data = recv(size)
        except (BlockingIOError, TimeoutError, InterruptedError):
            data = b""
        if data:
            ingest(data, clock())
        now = time.monotonic()
        if now < next_check:
            continue
        next_check = now + _POLL_S
        if not poll():
            continue
        try:
            command = conn.recv()
        except EOFError:
            return
        if command == "stop":
            sock.setblocking(False)
            for _ in range(_DRAIN_MAX_DATAGRAMS):
                try:
                    ingest(recv(size), clock())
                except (BlockingIOError, InterruptedError):
                    break
        conn.send(acc.take())
        if command == "stop":
            conn.close()
            return


class WorkerPool:
    """Spawned reader processes and their control pipes (used by the main process only)."""

    def __init__(self, *, sock: socket.socket, count: int, limits: WorkerLimits) -> None:
        self._ctx = multiprocessing.get_context("spawn")
        self._sock = sock
        self._count = count
        self._limits = limits
        self._procs: list[multiprocessing.process.BaseProcess] = []
        self._conns: list[multiprocessing.connection.Connection] = []

    def start(self) -> None:
        for index in range(self._count):
            parent, child = self._ctx.Pipe()
            proc = self._ctx.Process(
                target=worker_main,
                args=(self._sock, child, self._limits),
                name=f"meshfed-statsd-{index}",
                daemon=True,
            )
            proc.start()
            child.close()
            self._procs.append(proc)
            self._conns.append(parent)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs if p.pid is not None]

    def collect(self, command: str, timeout_s: float) -> list[Partial]:
        """Send ``take`` or ``stop`` to every worker and gather their partials (blocking:
        run it in a thread). A worker that does not answer in time is skipped."""
        live = []
        for conn in self._conns:
            try:
                conn.send(command)
                live.append(conn)
            except (BrokenPipeError, OSError):
                continue
        deadline = time.monotonic() + timeout_s
        partials = []
        for conn in live:
            try:
                if conn.poll(max(0.0, deadline - time.monotonic())):
                    partials.append(conn.recv())
            except (EOFError, OSError):
                continue
        return partials

    def stop(self, timeout_s: float) -> list[Partial]:
        """Drain and stop every worker; returns their last partials."""
        partials = self.collect("stop", timeout_s)
        for proc in self._procs:
            proc.join(timeout=max(0.1, timeout_s))
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
        for conn in self._conns:
            conn.close()
        self._procs, self._conns = [], []
        return partials

"""Senders that stream as fast as the collector answers and record exactly what was acked.

Each sender numbers what it sends (request ``k``, event ``seq``) and keeps the set of numbers
the collector acknowledged in the protocol's own way: remote_write a 2xx answer, Forward an
ack carrying the chunk id (the npm fluent-logger, in ``forward_stream_driver.js``), OTLP the
SDK exporter's ``SUCCESS`` (the exporter retries retryable answers itself, until its
timeout). Every loop is bounded in count, and stops when told to.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, TraceFlags

from tests.helpers.paths import HELPERS
from tests.helpers.remote_write import HEADERS, Series, encode_write_request, snappy_block

STEP_MS = 1000
"""Request ``k`` of a remote_write sender carries one sample per series at ``t0 + k * STEP_MS``."""
RETRYABLE_HTTP = {429, 503}
"""remote_write answers Prometheus retries (any other non-2xx would drop data)."""


class Sender(Protocol):
    acked: set[int]
    """Numbers (request, event or export) the collector acknowledged."""

    async def run(self, stop: asyncio.Event) -> None:
        """Send until ``stop`` is set or the bound is reached."""


@dataclass
class RemoteWriteSender:
    """One Prometheus-like sender: its own series, one request in flight, in time order."""

    name: str
    url: str
    t0_ms: int
    series: int = 25
    max_requests: int = 20_000
    sent: int = 0
    acked: set[int] = field(default_factory=set)
    answers: Counter[str] = field(default_factory=Counter)

    def labels(self, i: int) -> dict[str, str]:
        return {"__name__": "kill_rw", "sender": self.name, "i": str(i)}

    def body(self, k: int) -> bytes:
        ts = self.t0_ms + k * STEP_MS
        batch: list[Series] = [(self.labels(i), [(ts, float(k))]) for i in range(self.series)]
        return snappy_block(encode_write_request(batch))

    async def post(self, client: httpx.AsyncClient, k: int) -> None:
        self.sent = max(self.sent, k + 1)
        try:
            r = await client.post("/api/v1/write", content=self.body(k), headers=HEADERS)
        except httpx.HTTPError:
            self.answers["no answer"] += 1
            await asyncio.sleep(0.05)
            return
        self.answers[str(r.status_code)] += 1
        if 200 <= r.status_code < 300:
            self.acked.add(k)
        else:
            await asyncio.sleep(0.05)  # a retryable refusal: back off a little (Prometheus does)

    async def run(self, stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as client:
            for k in range(self.max_requests):
                if stop.is_set():
                    return
                await self.post(client, k)

    async def stored_counts(self, client: httpx.AsyncClient) -> tuple[list[float], Any]:
        """Samples stored per series of this sender (sorted), read back through the
        Prometheus query API, with the answer's body for assertion messages."""
        query = f'count_over_time(kill_rw{{sender="{self.name}"}}[2h])'
        body = (await client.get("/api/v1/query", params={"query": query})).json()
        return sorted(float(r["value"][1]) for r in body["data"]["result"]), body

    def unexpected_answers(self) -> dict[str, int]:
        """Answers that are neither success nor retryable (would make Prometheus drop data)."""
        ok = {str(c) for c in (200, 204, *RETRYABLE_HTTP)} | {"no answer"}
        return {a: n for a, n in self.answers.items() if a not in ok}


@dataclass
class ForwardSender:
    """The npm fluent-logger in PackedForward mode with acks, streaming ``per_tick`` events
    every ``tick_ms`` (see ``forward_stream_driver.js``)."""

    tag: str
    port: int
    count: int = 90_000
    """Bodies carry 5 digits: at most 99,999 events."""
    per_tick: int = 30
    tick_ms: int = 10
    deadline_ms: int = 120_000
    acked: set[int] = field(default_factory=set)
    emitted: int = 0
    crash: str = ""
    """The logger's exception, if it threw (fluent-logger 3.x does when the socket closes
    during a write): the stream stopped there."""

    async def run(self, stop: asyncio.Event) -> None:
        node = shutil.which("node")
        assert node is not None, "node is required (Debian nodejs)"
        plan = {
            "port": self.port,
            "tag": self.tag,
            "count": self.count,
            "perTick": self.per_tick,
            "tickMs": self.tick_ms,
            "deadlineMs": self.deadline_ms,
        }
        proc = await asyncio.create_subprocess_exec(
            node,
            str(HELPERS / "forward_stream_driver.js"),
            json.dumps(plan),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None
        stopper = asyncio.create_task(self._terminate_on(stop, proc))
        try:
            while line := await proc.stdout.readline():
                kind, _, rest = line.decode().strip().partition(" ")
                if kind == "a":
                    self.acked.update(int(s) for s in rest.split())
                elif kind == "end":
                    self.emitted = int(rest)
                elif kind == "crash":
                    self.crash = rest
            _, err = await asyncio.wait_for(proc.communicate(), timeout=30)
            assert proc.returncode == 0, err.decode()
        finally:
            stopper.cancel()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    @staticmethod
    async def _terminate_on(stop: asyncio.Event, proc: asyncio.subprocess.Process) -> None:
        await stop.wait()
        if proc.returncode is None:
            proc.terminate()

    def body(self, seq: int) -> str:
        return f"{self.tag}#{seq:05d}"


def trace_id_of(sender: int, k: int) -> int:
    """A distinct, non-zero 128-bit trace id per (sender, export)."""
    return (0x6B11 << 112) | (sender << 64) | (k + 1)


@dataclass
class OtlpSender:
    """An OpenTelemetry SDK span exporter (gRPC or HTTP/protobuf); export ``k`` is one trace
    of ``spans`` spans, ids ``1..spans``."""

    index: int
    exporter: Any
    spans: int = 20
    max_exports: int = 20_000
    sent: int = 0
    acked: set[int] = field(default_factory=set)
    results: Counter[str] = field(default_factory=Counter)

    @classmethod
    def grpc(cls, index: int, port: int) -> OtlpSender:
        return cls(index, GrpcSpans(endpoint=f"127.0.0.1:{port}", insecure=True, timeout=3))

    @classmethod
    def http(cls, index: int, port: int) -> OtlpSender:
        return cls(index, HttpSpans(endpoint=f"http://127.0.0.1:{port}/v1/traces", timeout=3))

    def batch(self, k: int) -> list[ReadableSpan]:
        resource = Resource.create({"service.name": f"kill-otlp-{self.index}"})
        scope = InstrumentationScope("meshfed.kill_under_load")
        flags = TraceFlags(TraceFlags.SAMPLED)
        start = time.time_ns() - 1_000_000
        return [
            ReadableSpan(
                name=f"op-{j % 5}",
                context=SpanContext(trace_id_of(self.index, k), j, False, flags),
                resource=resource,
                instrumentation_scope=scope,
                start_time=start,
                end_time=start + 1000,
            )
            for j in range(1, self.spans + 1)
        ]

    def export(self, k: int) -> None:
        """One blocking export (run in a thread)."""
        self.sent = max(self.sent, k + 1)
        try:
            result = self.exporter.export(self.batch(k))
        except Exception as e:  # a failed export is simply not acknowledged
            self.results[type(e).__name__] += 1
            return
        self.results[result.name] += 1
        if result is SpanExportResult.SUCCESS:
            self.acked.add(k)

    async def run(self, stop: asyncio.Event) -> None:
        for k in range(self.max_exports):
            if stop.is_set():
                return
            await asyncio.to_thread(self.export, k)

    def shutdown(self) -> None:
        self.exporter.shutdown()

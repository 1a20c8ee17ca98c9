"""Sending the generator's telemetry into ``meshfed collect`` through its real protocols.

- metrics: Prometheus remote_write (``POST /api/v1/write``, snappy protobuf) of every series'
  cumulative value, once per flush;
- spans: OTLP/HTTP protobuf (``POST /v1/traces``): per simulated request one trace, a server
  span per hop, each hop's span the child of the previous hop's (productpage -> reviews ->
  ratings), status ERROR for 5xx;
- access logs: Fluentd Forward mode (``[tag, [[time, record], ...], {"chunk": id}]``) over TCP,
  waiting for the ``ack`` so a record is known stored; each record carries ``trace_id`` and
  ``span_id`` so the collector links it to the span.

A refused or failed send raises ``ExportError`` with what failed; the generator reports it
and keeps running (the next flush resends the cumulative metrics anyway).
"""

from __future__ import annotations

import asyncio
import base64
import os
from dataclasses import dataclass
from typing import Any

import httpx
import msgpack

from meshfed.loadgen.telemetry import (
    REMOTE_WRITE_HEADERS,
    HopRecord,
    Series,
    encode_write_request,
    snappy_block,
)


class ExportError(RuntimeError):
    """A send to the collector failed; the message names the protocol and the answer."""


@dataclass(frozen=True, slots=True)
class HopSpan:
    """One hop of a simulated request, timed."""

    span_id: bytes
    parent_id: bytes
    start_ns: int
    end_ns: int
    hop: HopRecord


@dataclass(frozen=True, slots=True)
class SimulatedCall:
    trace_id: bytes
    spans: tuple[HopSpan, ...]
    headers: tuple[tuple[str, str], ...]


def new_ids() -> tuple[bytes, bytes]:
    """A fresh (trace id, span id): random, as tracers make them (not from the seeded RNG,
    which decides outcomes only)."""
    return os.urandom(16), os.urandom(8)


def trace_request(calls: list[SimulatedCall], service_cluster: str) -> bytes:
    """One ``ExportTraceServiceRequest`` with a resource per (workload, cluster)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (  # noqa: PLC0415
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest()
    scopes: dict[tuple[str, str], Any] = {}
    for call in calls:
        for s in call.spans:
            key = (s.hop.destination_workload, s.hop.destination_cluster)
            scope = scopes.get(key)
            if scope is None:
                rs = request.resource_spans.add()
                attrs = {
                    "service.name": s.hop.destination_service_name,
                    "k8s.namespace.name": s.hop.destination_namespace,
                    "k8s.cluster.name": s.hop.destination_cluster or service_cluster,
                    "istio.canonical_revision": s.hop.destination_version,
                }
                for k, v in attrs.items():
                    rs.resource.attributes.add(key=k).value.string_value = v
                scope = rs.scope_spans.add()
                scope.scope.name = "meshfed-loadgen"
                scopes[key] = scope
            span = scope.spans.add(
                trace_id=call.trace_id,
                span_id=s.span_id,
                parent_span_id=s.parent_id,
                name=f"{s.hop.destination_service}:{s.hop.port}/*",
                kind=2,  # SPAN_KIND_SERVER
                start_time_unix_nano=s.start_ns,
                end_time_unix_nano=s.end_ns,
            )
            for k, v in (
                ("http.status_code", str(s.hop.response_code)),
                ("response_flags", s.hop.response_flags),
                ("upstream_cluster", s.hop.destination_cluster),
                ("node_id", s.hop.source_workload),
                *call.headers,
            ):
                span.attributes.add(key=k).value.string_value = v
            if s.hop.response_code >= 500:
                span.status.code = 2  # STATUS_CODE_ERROR
                span.status.message = f"HTTP {s.hop.response_code} {s.hop.response_flags}"
    return bytes(request.SerializeToString())


def access_log_records(calls: list[SimulatedCall]) -> list[list[Any]]:
    """Forward entries ``[time, record]``: one Envoy-style access log line per hop."""
    entries: list[list[Any]] = []
    for call in calls:
        for s in call.spans:
            h = s.hop
            record = {
                "message": f'"GET / HTTP/1.1" {h.response_code} {h.response_flags} '
                f"{h.duration_ms:.0f} {h.destination_service} {h.destination_cluster}",
                "level": "error" if h.response_code >= 500 else "info",
                "response_code": h.response_code,
                "response_flags": h.response_flags,
                "duration_ms": round(h.duration_ms, 3),
                "upstream_cluster": h.destination_cluster,
                "source_workload": h.source_workload,
                "destination_service": h.destination_service,
                "destination_version": h.destination_version,
                "cluster": h.source_cluster,
                "trace_id": call.trace_id.hex(),
                "span_id": s.span_id.hex(),
            }
            entries.append([s.start_ns // 1_000_000_000, record])
    return entries


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where the collector listens (``meshfed collect``'s defaults)."""

    http: str = "127.0.0.1:9201"
    """Query API and ``POST /api/v1/write``."""
    otlp_http: str = "127.0.0.1:4318"
    forward: str = "127.0.0.1:24224"
    tag: str = "istio.accesslog"


class Exporter:
    """One HTTP client for remote_write and OTLP, one Forward connection per flush."""

    def __init__(self, endpoints: Endpoints, *, timeout_s: float = 10.0) -> None:
        self.endpoints = endpoints
        self._timeout = timeout_s
        self._http = httpx.AsyncClient(timeout=timeout_s)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def write_metrics(self, series: list[Series]) -> None:
        if not series:
            return
        body = snappy_block(encode_write_request(series))
        url = f"http://{self.endpoints.http}/api/v1/write"
        await self._post(url, body, REMOTE_WRITE_HEADERS, "remote_write")

    async def write_spans(self, calls: list[SimulatedCall], cluster: str) -> None:
        if not calls:
            return
        url = f"http://{self.endpoints.otlp_http}/v1/traces"
        body = trace_request(calls, cluster)
        await self._post(url, body, {"Content-Type": "application/x-protobuf"}, "OTLP/HTTP")

    async def _post(self, url: str, body: bytes, headers: dict[str, str], what: str) -> None:
        try:
            r = await self._http.post(url, content=body, headers=headers)
        except httpx.HTTPError as err:
            raise ExportError(f"{what} to {url} failed: {err!r}") from err
        if r.status_code >= 300:
            raise ExportError(f"{what} to {url} answered {r.status_code}: {r.text[:200]}")

    async def write_logs(self, calls: list[SimulatedCall]) -> None:
        entries = access_log_records(calls)
        if not entries:
            return
        host, _, port = self.endpoints.forward.rpartition(":")
        chunk = base64.b64encode(os.urandom(12)).decode()
        message = msgpack.packb([self.endpoints.tag, entries, {"chunk": chunk}], use_bin_type=True)
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host or "127.0.0.1", int(port)), self._timeout
            )
        except (OSError, TimeoutError) as err:
            raise ExportError(f"Forward to {self.endpoints.forward} failed: {err!r}") from err
        try:
            writer.write(message)
            await writer.drain()
            unpacker = msgpack.Unpacker(raw=False)
            while True:
                data = await asyncio.wait_for(reader.read(4096), self._timeout)
                if not data:
                    raise ExportError(f"Forward to {self.endpoints.forward}: closed without ack")
                unpacker.feed(data)
                for obj in unpacker:
                    if isinstance(obj, dict) and obj.get("ack") == chunk:
                        return
        except (OSError, TimeoutError) as err:
            raise ExportError(f"Forward to {self.endpoints.forward} failed: {err!r}") from err
        finally:
            writer.close()

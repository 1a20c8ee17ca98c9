"""Prometheus remote_write 1.0 receiver: ``POST /api/v1/write`` answered as the spec says.

Order of checks, cheapest first, so that a hostile request costs little: bearer token
(401) -> content type (415 for remote_write 2.0) -> declared and actual body size while
streaming (413) -> in-flight memory budget (429) -> snappy header's declared length
(413, before decompressing) -> decode (400) -> write through the sink -> 204 only after the
store acknowledged. Store refusals follow Prometheus 2.42's own receiver: out-of-order and
conflicting duplicate samples make the answer 400 (the sender must not retry them); the
store being down or shutting down is 503 with ``Retry-After``; the memory limit or a full
queue is 429. Every outcome is counted on the receiver's metrics; nothing is logged per
request.

Samples travel as one columnar ``SeriesBatch`` (``write_series``), never as an object per
sample; the receiver's ``SeriesDecoder`` remembers the label blocks it validated.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time

from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from collectors._core.component import SeriesSink, WriteResult
from collectors._core.errors import (
    LimitExceededError,
    MemoryLimitError,
    PermanentError,
    QueueFullError,
    RetryableError,
)
from collectors._core.selfmetrics import ReceiverMetrics
from collectors._kits.loop_turns import LoopTurns
from collectors.pipeline.memory import MemoryLimiter
from collectors.receivers.prometheus.config import RemoteWriteSettings
from collectors.receivers.prometheus.protocol import remote_write as parser

log = logging.getLogger(__name__)

WRITE_PATH = "/api/v1/write"
_DECODE_IN_THREAD_BYTES = 256 * 1024
"""Bodies whose decoded size exceeds this are decoded off the event loop."""
MEMORY_PER_DECOMPRESSED_BYTE = 6
"""Reserved bytes per decompressed byte: protobuf objects and Sample records cost more."""
_RETRY_AFTER_S = "5"


class _RefusedError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


def remote_write_routes(
    *,
    sink: SeriesSink,
    limiter: MemoryLimiter,
    settings: RemoteWriteSettings,
    metrics: ReceiverMetrics,
) -> list[Route]:
    """The receiver's route; the token is read once, here (validated settings)."""
    settings.validate()
    token = settings.token()
    handler = _Handler(sink=sink, limiter=limiter, settings=settings, metrics=metrics, token=token)
    return [Route(WRITE_PATH, handler.handle, methods=["POST"])]


class _Handler:
    def __init__(
        self,
        *,
        sink: SeriesSink,
        limiter: MemoryLimiter,
        settings: RemoteWriteSettings,
        metrics: ReceiverMetrics,
        token: str,
    ) -> None:
        self._sink = sink
        self._decoder = parser.SeriesDecoder()
        self._limiter = limiter
        self._settings = settings
        self._metrics = metrics
        self._expected = f"Bearer {token}".encode() if token else b""
        self._decode_turns = LoopTurns()

    async def handle(self, request: Request) -> Response:
        try:
            self._authorize(request)
            self._check_headers(request)
            declared = _content_length(request, self._settings.max_body_bytes)
            with self._limiter.reserve(declared or self._settings.max_body_bytes):
                body = await self._read_body(request)
                size = _decompressed_size(body, self._settings.max_decompressed_bytes)
                with self._limiter.reserve(size * MEMORY_PER_DECOMPRESSED_BYTE):
                    return await self._ingest(body, size)
        except MemoryLimitError as e:
            return self._refuse(_RefusedError(429, "memory_limit", str(e)))
        except _RefusedError as e:
            return self._refuse(e)

    def _refuse(self, e: _RefusedError) -> Response:
        self._metrics.rejected(e.reason)
        headers = _headers_for(e.status)
        return PlainTextResponse(f"{e}\n", status_code=e.status, headers=headers)

    def _authorize(self, request: Request) -> None:
        if not self._expected:
            return
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, self._expected):
            raise _RefusedError(401, "unauthorized", "missing or wrong bearer token")

    def _check_headers(self, request: Request) -> None:
        content_type = request.headers.get("content-type", "")
        if "io.prometheus.write.v2" in content_type:
            raise _RefusedError(
                415, "unsupported", "remote_write 2.0 is not supported; send remote_write 1.0"
            )
        encoding = request.headers.get("content-encoding", "snappy").strip().lower()
        if encoding not in ("snappy", ""):
            raise _RefusedError(415, "unsupported", f"unsupported Content-Encoding {encoding!r}")

    async def _read_body(self, request: Request) -> bytes:
        limit = self._settings.max_body_bytes
        chunks: list[bytes] = []
        total = 0
        try:
            async for chunk in request.stream():
                total += len(chunk)
                if total > limit:
                    raise _RefusedError(413, "too_large", f"request body exceeds {limit} bytes")
                chunks.append(chunk)
        except ClientDisconnect:
            raise _RefusedError(400, "disconnected", "client disconnected") from None
        return b"".join(chunks)

    async def _ingest(self, body: bytes, size: int) -> Response:
        try:
            batch = await self._decode(body, size)
        except LimitExceededError as e:
            raise _RefusedError(413, "too_large", str(e)) from e
        except PermanentError as e:
            raise _RefusedError(400, "bad_data", str(e)) from e
        self._metrics.received("samples", len(batch.batch))
        started = time.perf_counter()
        try:
            if batch.metadata:
                await self._sink.write_metadata(batch.metadata)
                self._metrics.stored("metadata", len(batch.metadata))
            result = await self._sink.write_series(batch.batch)
        except (MemoryLimitError, QueueFullError) as e:
            raise _RefusedError(429, _reason(e), str(e)) from e
        except RetryableError as e:
            raise _RefusedError(503, "store_unavailable", str(e)) from e
        except PermanentError as e:
            raise _RefusedError(400, "bad_data", str(e)) from e
        self._metrics.observe_batch(time.perf_counter() - started)
        return self._answer(result)

    async def _decode(self, body: bytes, size: int) -> parser.WriteBatch:
        """A large body is decoded in a thread; a small one on the loop, in turns: the batch
        of one request reaches a writer before the next request's decode starts
        (collectors/_kits/loop_turns.py), so Redis works while the collector decodes."""

        def decode() -> parser.WriteBatch:
            limit = self._settings.max_decompressed_bytes
            return self._decoder.decode(body, max_decompressed_bytes=limit)

        if size > _DECODE_IN_THREAD_BYTES:
            return await asyncio.to_thread(decode)
        return await self._decode_turns.run(decode)

    def _answer(self, result: WriteResult) -> Response:
        self._metrics.stored("samples", result.accepted + result.duplicates_ignored)
        for reason, n in (
            ("out_of_order", result.out_of_order),
            ("duplicate_sample", result.duplicate_conflicts),
            ("series_limit", result.over_limit),
        ):
            if n:
                self._metrics.rejected(reason, n)
        if result.out_of_order:
            return PlainTextResponse("out of order sample\n", status_code=400)
        if result.duplicate_conflicts:
            return PlainTextResponse("duplicate sample for timestamp\n", status_code=400)
        if result.over_limit:
            return PlainTextResponse("series limit exceeded\n", status_code=400)
        return Response(status_code=204)


def _reason(e: RetryableError) -> str:
    return "memory_limit" if isinstance(e, MemoryLimitError) else "queue_full"


def _content_length(request: Request, limit: int) -> int:
    raw = request.headers.get("content-length")
    if raw is None:
        return 0
    try:
        value = int(raw)
    except ValueError:
        raise _RefusedError(400, "bad_data", "invalid Content-Length") from None
    if value < 0:
        raise _RefusedError(400, "bad_data", "invalid Content-Length")
    if value > limit:
        raise _RefusedError(413, "too_large", f"request body of {value} bytes exceeds {limit}")
    return value


def _decompressed_size(body: bytes, limit: int) -> int:
    try:
        size = parser.snappy_uncompressed_length(body)
    except PermanentError as e:
        raise _RefusedError(400, "bad_data", str(e)) from e
    if size > limit:
        raise _RefusedError(
            413,
            "too_large",
            f"snappy block declares {size} bytes uncompressed; the limit is {limit}",
        )
    return size


def _headers_for(status: int) -> dict[str, str]:
    if status in (429, 503):
        return {"Retry-After": _RETRY_AFTER_S}
    if status == 401:
        return {"WWW-Authenticate": "Bearer"}
    return {}

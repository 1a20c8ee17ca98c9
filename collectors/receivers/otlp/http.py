"""The OTLP/HTTP receiver: ``POST /v1/traces|metrics|logs``, protobuf or JSON, optional gzip.

Answers as the OTLP spec says: 200 with the ``Export*ServiceResponse`` (``partial_success``
set when records were refused), in the request's content type; 400 bad data, 413 body over
``max_message_bytes`` (checked on the wire *and* while decompressing, so a gzip bomb stops
at the limit), 415 unknown content type or encoding, 429 too many requests in flight and 503
store unavailable, both with ``Retry-After``. Error bodies are a ``google.rpc.Status``.

``otlp_http_routes`` gives the routes to mount anywhere; ``OtlpHttpReceiver`` serves them
with uvicorn on ``settings.http_listen`` (its own port, 4318 by default).
"""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable

from google.protobuf.message import Message
from google.rpc.status_pb2 import Status  # type: ignore[import-untyped]
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from collectors._core.component import TelemetrySink
from collectors._core.errors import (
    PermanentError,
    RetryableError,
    TooBusyError,
    TooLargeError,
    UnsupportedMediaError,
)
from collectors._core.selfmetrics import ReceiverMetrics
from collectors._kits.http_server import HttpServer, ServerTls
from collectors.codecs.otlp_json import to_otlp_json
from collectors.receivers.otlp.config import OtlpSettings
from collectors.receivers.otlp.ingest import SIGNALS, OtlpIngest, Signal

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_READ_CHUNK = 64 * 1024


def _decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """``gzip`` (several members allowed) or ``deflate`` body, stopping past ``limit`` bytes."""
    if encoding == "gzip":
        wbits = 16 + zlib.MAX_WBITS
    elif encoding == "deflate":
        wbits = zlib.MAX_WBITS if body[:1] == b"\x78" else -zlib.MAX_WBITS
    else:
        raise UnsupportedMediaError(f"Content-Encoding {encoding!r} is not supported")
    out = bytearray()
    data = body
    try:
        while data:
            d = zlib.decompressobj(wbits)
            while data:
                out += d.decompress(data, limit + 1 - len(out))
                if len(out) > limit:
                    raise TooLargeError(
                        f"body decompresses to more than otlp.max_message_bytes ({limit})"
                    )
                data = d.unconsumed_tail
            if not d.eof:
                raise PermanentError(f"truncated {encoding} body")
            data = d.unused_data if encoding == "gzip" else b""
    except zlib.error as e:
        raise PermanentError(f"invalid {encoding} body: {e}") from None
    return bytes(out)


def _status_response(status: int, message: str, *, json: bool, retry_after: int = 0) -> Response:
    body = Status(code=0, message=message)
    headers = {"Retry-After": str(retry_after)} if status in (429, 503) else None
    if json:
        return Response(to_otlp_json(body), status, headers=headers, media_type=JSON)
    return Response(body.SerializeToString(), status, headers=headers, media_type=PROTOBUF)


async def _read_body(request: Request, ingest: OtlpIngest, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit():
        ingest.check_size(int(declared))
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            ingest.check_size(len(body))
    return bytes(body)


def _handler(
    signal: Signal, ingest: OtlpIngest, settings: OtlpSettings
) -> Callable[[Request], Awaitable[Response]]:
    limit = settings.max_message_bytes

    async def export(request: Request) -> Response:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        json = media == JSON
        if media not in (PROTOBUF, JSON):
            ingest.metrics.rejected("unsupported_media")
            why = f"Content-Type must be {PROTOBUF} or {JSON}; got {media or 'none'!r}"
            return _status_response(415, why, json=False)
        try:
            with ingest.admit():
                body = await _read_body(request, ingest, limit)
                encoding = request.headers.get("content-encoding", "identity").strip().lower()
                if encoding not in ("", "identity"):
                    try:
                        body = _decompress(body, encoding, limit)
                    except TooLargeError:
                        ingest.metrics.rejected("too_large")
                        raise
                    except UnsupportedMediaError:
                        raise
                    except PermanentError:
                        ingest.metrics.rejected("bad_request")
                        raise
                message = ingest.decode(signal, body, json=json)
                response: Message = await ingest.export(signal, message)
        except UnsupportedMediaError as e:
            ingest.metrics.rejected("unsupported_media")
            return _status_response(415, str(e), json=json)
        except TooLargeError as e:
            return _status_response(413, str(e), json=json)
        except PermanentError as e:
            return _status_response(400, str(e), json=json)
        except TooBusyError as e:
            return _status_response(429, str(e), json=json, retry_after=settings.retry_after_s)
        except RetryableError as e:
            return _status_response(503, str(e), json=json, retry_after=settings.retry_after_s)
        except ClientDisconnect:
            ingest.metrics.rejected("client_disconnect")
            return Response(status_code=400)
        if json:
            return Response(to_otlp_json(response), 200, media_type=JSON)
        return Response(response.SerializeToString(), 200, media_type=PROTOBUF)

    return export


def otlp_http_routes(
    *, settings: OtlpSettings, sink: TelemetrySink, metrics: ReceiverMetrics
) -> list[Route]:
    """``POST /v1/traces``, ``/v1/metrics``, ``/v1/logs`` sharing one in-flight bound."""
    settings.validate()
    ingest = OtlpIngest(settings=settings, sink=sink, metrics=metrics)
    return [
        Route(f"/v1/{signal.name}", _handler(signal, ingest, settings), methods=["POST"])
        for signal in SIGNALS
    ]


class OtlpHttpReceiver:
    """A :class:`~collectors._core.component.Component` serving the routes on ``http_listen``
    (TLS / mTLS when configured) with :class:`collectors._kits.http_server.HttpServer`."""

    def __init__(
        self, *, settings: OtlpSettings, sink: TelemetrySink, metrics: ReceiverMetrics
    ) -> None:
        tls = None
        if settings.tls_cert_file is not None and settings.tls_key_file is not None:
            tls = ServerTls(
                settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file
            )
        self._server = HttpServer(
            app=Starlette(routes=otlp_http_routes(settings=settings, sink=sink, metrics=metrics)),
            listen=settings.http_address,
            setting_name="otlp.http_listen",
            name="otlp-http",
            tls=tls,
            backlog=512,
            graceful_s=5,
        )

    @property
    def port(self) -> int:
        """The bound port (useful with ``http_listen`` port 0) once started."""
        return self._server.port

    async def start(self) -> None:
        """Bind, then serve in a task; returns once uvicorn accepts connections."""
        await self._server.start()

    async def shutdown(self) -> None:
        """Stop accepting, finish in-flight requests (uvicorn's graceful timeout); idempotent."""
        await self._server.shutdown()

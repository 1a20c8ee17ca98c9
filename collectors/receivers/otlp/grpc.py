"""The OTLP/gRPC receiver: TraceService, MetricsService and LogsService ``Export`` on one server.

Methods are registered with raw-bytes handlers (no generated servicer), so that meshfed sees
the message size before decoding and can count oversized messages itself, and so that the
decode error of a bad message is an INVALID_ARGUMENT it chose. Answers:
OK (+ ``partial_success`` when records were refused), INVALID_ARGUMENT (bad data, do not
retry), RESOURCE_EXHAUSTED (message over ``max_message_bytes``: not retryable as sent),
UNAVAILABLE + ``google.rpc.RetryInfo`` (store down, memory limit, too many requests in flight).
The RetryInfo travels twice: in ``grpc-status-details-bin`` (a ``google.rpc.Status``, what
grpc-go/java clients read) and in ``google.rpc.retryinfo-bin`` (what the Python SDK reads).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import grpc
from google.protobuf.any_pb2 import Any as PbAny
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.rpc.error_details_pb2 import RetryInfo  # type: ignore[import-untyped]
from google.rpc.status_pb2 import Status  # type: ignore[import-untyped]

from collectors._core.component import TelemetrySink
from collectors._core.errors import ConfigError, PermanentError, RetryableError, TooLargeError
from collectors._core.selfmetrics import ReceiverMetrics
from collectors.receivers.otlp.config import OtlpSettings
from collectors.receivers.otlp.ingest import SIGNALS, OtlpIngest, Signal

log = logging.getLogger(__name__)
_SHUTDOWN_GRACE_S = 5.0
Handler = Callable[[bytes, grpc.aio.ServicerContext[bytes, Message]], Awaitable[Message]]


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


def retry_trailers(
    code: grpc.StatusCode, message: str, delay_s: int
) -> tuple[tuple[str, bytes], ...]:
    """Trailing metadata carrying ``RetryInfo{retry_delay}`` in both conventional places."""
    info = RetryInfo(retry_delay=Duration(seconds=delay_s))
    detail = PbAny()
    detail.Pack(info)
    status = Status(code=code.value[0], message=message, details=[detail])
    return (
        ("grpc-status-details-bin", status.SerializeToString()),
        ("google.rpc.retryinfo-bin", info.SerializeToString()),
    )


class OtlpGrpcReceiver:
    """A :class:`~collectors._core.component.Component`: OTLP/gRPC on ``settings.grpc_listen``."""

    def __init__(
        self, *, settings: OtlpSettings, sink: TelemetrySink, metrics: ReceiverMetrics
    ) -> None:
        settings.validate()
        self._settings = settings
        self._ingest = OtlpIngest(settings=settings, sink=sink, metrics=metrics)
        self._server: grpc.aio.Server | None = None
        self.port: int = 0
        """The bound port (useful with ``grpc_listen`` port 0) once started."""

    async def start(self) -> None:
        """Bind and serve; idempotent. A port that cannot be bound is a ``ConfigError``."""
        if self._server is not None:
            return
        limit = self._settings.max_message_bytes
        server = grpc.aio.server(
            options=[
                # meshfed refuses (and counts) anything above ``limit``; gRPC's own cap
                # stops the rest before it is buffered.
                ("grpc.max_receive_message_length", 2 * limit),
                ("grpc.max_send_message_length", 4 * 1024 * 1024),
            ]
        )
        server.add_generic_rpc_handlers(
            [
                grpc.method_handlers_generic_handler(
                    signal.grpc_service,
                    {
                        "Export": grpc.unary_unary_rpc_method_handler(
                            self._handler(signal),
                            request_deserializer=None,
                            response_serializer=_serialize,
                        )
                    },
                )
                for signal in SIGNALS
            ]
        )
        host, port = self._settings.grpc_address
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            if self._settings.tls_enabled:
                self.port = server.add_secure_port(address, self._credentials())
            else:
                self.port = server.add_insecure_port(address)
        except RuntimeError as e:
            raise ConfigError(f"otlp.grpc_listen: cannot bind {address}: {e}") from e
        if not self.port:
            raise ConfigError(f"otlp.grpc_listen: cannot bind {address}")
        await server.start()
        self._server = server
        log.info(
            "OTLP/gRPC receiver on %s:%d (%s)",
            host,
            self.port,
            "mTLS"
            if self._settings.tls_client_ca_file
            else "TLS"
            if self._settings.tls_enabled
            else "plaintext",
        )

    async def shutdown(self) -> None:
        """Stop accepting, let in-flight exports finish (bounded grace); idempotent."""
        server, self._server = self._server, None
        if server is not None:
            await server.stop(_SHUTDOWN_GRACE_S)

    def _credentials(self) -> grpc.ServerCredentials:
        s = self._settings
        assert s.tls_cert_file is not None and s.tls_key_file is not None
        ca = s.tls_client_ca_file.read_bytes() if s.tls_client_ca_file else None
        return grpc.ssl_server_credentials(
            [(s.tls_key_file.read_bytes(), s.tls_cert_file.read_bytes())],
            root_certificates=ca,
            require_client_auth=ca is not None,
        )

    def _handler(self, signal: Signal) -> Handler:
        ingest = self._ingest
        retry_after = self._settings.retry_after_s

        async def export(raw: bytes, context: grpc.aio.ServicerContext[bytes, Message]) -> Message:
            try:
                with ingest.admit():
                    request = ingest.decode(signal, raw, json=False)
                    return await ingest.export(signal, request)
            except TooLargeError as e:
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(e))
            except PermanentError as e:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
            except RetryableError as e:
                code = grpc.StatusCode.UNAVAILABLE
                await context.abort(
                    code, str(e), trailing_metadata=retry_trailers(code, str(e), retry_after)
                )
            raise AssertionError("unreachable: context.abort raises")  # pragma: no cover

        return export

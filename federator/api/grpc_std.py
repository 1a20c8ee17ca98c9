"""The standard gRPC services next to FederationService: health and server reflection.

``grpc.health.v1.Health`` (Check, List, Watch) is what kubelet's gRPC probe and
``grpc_health_probe`` call; ``grpc.reflection.v1alpha.ServerReflection`` is what grpcurl
reads to list and describe the services. Both use the message modules of
grpcio-health-checking and grpcio-reflection (plain protobuf, no grpcio), so a process
that also holds those packages' clients, as the tests do, has one definition of each
message. They are served by ``federator.api.grpc_host``, as FederationService is.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable

from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import FileDescriptor
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from federator.api.grpc_host import Call

HEALTH_DESCRIPTOR = health_pb2.DESCRIPTOR.services_by_name["Health"]
REFLECTION_DESCRIPTOR = reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"]
HEALTH_SERVICE_NAME: str = HEALTH_DESCRIPTOR.full_name
REFLECTION_SERVICE_NAME: str = REFLECTION_DESCRIPTOR.full_name

ServingStatus = int
SERVING: ServingStatus = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING: ServingStatus = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN: ServingStatus = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN


class HealthServicer:
    """Per-service serving status ("" is the server as a whole), with Watch streams."""

    def __init__(self, services: Iterable[str]) -> None:
        self._status: dict[str, ServingStatus] = dict.fromkeys(services, NOT_SERVING)
        self._changed = asyncio.Condition()
        self._frozen = False

    async def set(self, service: str, status: ServingStatus) -> None:
        """Set one service's status (ignored after ``enter_graceful_shutdown``)."""
        if self._frozen or self._status.get(service) == status:
            return
        self._status[service] = status
        async with self._changed:
            self._changed.notify_all()

    async def enter_graceful_shutdown(self) -> None:
        """Every service NOT_SERVING from now on, whatever is set later."""
        for service in self._status:
            await self.set(service, NOT_SERVING)
        self._frozen = True

    async def Check(  # noqa: N802
        self, request: health_pb2.HealthCheckRequest, call: Call
    ) -> health_pb2.HealthCheckResponse:
        status = self._status.get(request.service)
        if status is None:
            raise GRPCError(Status.NOT_FOUND, f"unknown service {request.service!r}")
        return health_pb2.HealthCheckResponse(status=status)

    async def List(  # noqa: N802
        self, request: health_pb2.HealthListRequest, call: Call
    ) -> health_pb2.HealthListResponse:
        return health_pb2.HealthListResponse(
            statuses={
                name: health_pb2.HealthCheckResponse(status=status)
                for name, status in self._status.items()
            }
        )

    async def Watch(  # noqa: N802
        self, request: health_pb2.HealthCheckRequest, call: Call
    ) -> AsyncIterator[health_pb2.HealthCheckResponse]:
        sent: ServingStatus | None = None
        while True:
            status = self._status.get(request.service, SERVICE_UNKNOWN)
            if status != sent:
                yield health_pb2.HealthCheckResponse(status=status)
                sent = status
            async with self._changed:
                await self._changed.wait()


class ReflectionServicer:
    """Answers reflection requests from the default descriptor pool for ``services``."""

    def __init__(self, services: Iterable[str]) -> None:
        self._services = tuple(sorted(services))
        self._pool = descriptor_pool.Default()

    async def ServerReflectionInfo(  # noqa: N802
        self, requests: AsyncIterator[reflection_pb2.ServerReflectionRequest], call: Call
    ) -> AsyncIterator[reflection_pb2.ServerReflectionResponse]:
        async for request in requests:
            yield self.answer(request)

    def answer(
        self, request: reflection_pb2.ServerReflectionRequest
    ) -> reflection_pb2.ServerReflectionResponse:
        """The response to one reflection request (NOT_FOUND inside the response, as the
        protocol has it, for an unknown file or symbol)."""
        kind = request.WhichOneof("message_request")
        try:
            if kind == "list_services":
                return reflection_pb2.ServerReflectionResponse(
                    original_request=request,
                    list_services_response=reflection_pb2.ListServiceResponse(
                        service=[reflection_pb2.ServiceResponse(name=n) for n in self._services]
                    ),
                )
            if kind == "file_by_filename":
                return _files(request, self._pool.FindFileByName(request.file_by_filename))
            if kind == "file_containing_symbol":
                symbol = request.file_containing_symbol
                return _files(request, self._pool.FindFileContainingSymbol(symbol))
            if kind == "file_containing_extension":
                wanted = request.file_containing_extension
                message = self._pool.FindMessageTypeByName(wanted.containing_type)
                extension = self._pool.FindExtensionByNumber(message, wanted.extension_number)
                return _files(request, self._pool.FindFileContainingSymbol(extension.full_name))
            if kind == "all_extension_numbers_of_type":
                message = self._pool.FindMessageTypeByName(request.all_extension_numbers_of_type)
                numbers = sorted(e.number for e in self._pool.FindAllExtensions(message))
                return reflection_pb2.ServerReflectionResponse(
                    original_request=request,
                    all_extension_numbers_response=reflection_pb2.ExtensionNumberResponse(
                        base_type_name=message.full_name, extension_number=numbers
                    ),
                )
        except KeyError:
            return _error(request, Status.NOT_FOUND, "not found")
        return _error(request, Status.INVALID_ARGUMENT, f"unsupported request {kind!r}")


def _files(
    request: reflection_pb2.ServerReflectionRequest, file: FileDescriptor
) -> reflection_pb2.ServerReflectionResponse:
    """``file`` and everything it imports, serialized (a client resolves them itself)."""
    found: dict[str, FileDescriptor] = {}
    pending = [file]
    while pending:
        current = pending.pop()
        if current.name not in found:
            found[current.name] = current
            pending.extend(current.dependencies)
    serialized = []
    for descriptor in found.values():
        proto = descriptor_pb2.FileDescriptorProto()
        descriptor.CopyToProto(proto)
        serialized.append(proto.SerializeToString())
    return reflection_pb2.ServerReflectionResponse(
        original_request=request,
        file_descriptor_response=reflection_pb2.FileDescriptorResponse(
            file_descriptor_proto=serialized
        ),
    )


def _error(
    request: reflection_pb2.ServerReflectionRequest, code: Status, message: str
) -> reflection_pb2.ServerReflectionResponse:
    return reflection_pb2.ServerReflectionResponse(
        original_request=request,
        error_response=reflection_pb2.ErrorResponse(error_code=code.value, error_message=message),
    )

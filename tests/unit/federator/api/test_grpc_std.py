"""Health and reflection answers of the status API, without a server (the wire is tested in
tests/integration/federator/api)."""

from __future__ import annotations

import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from federator.api import grpc_std
from federator.api._generated.meshfed.v1 import federation_pb2 as pb
from federator.api.server import SERVICE_NAME

SERVICES = (SERVICE_NAME, grpc_std.HEALTH_SERVICE_NAME, grpc_std.REFLECTION_SERVICE_NAME)


def _files(response: reflection_pb2.ServerReflectionResponse) -> set[str]:
    names = set()
    for raw in response.file_descriptor_response.file_descriptor_proto:
        names.add(descriptor_pb2.FileDescriptorProto.FromString(raw).name)
    return names


@pytest.mark.parametrize(
    ("request_", "check"),
    [
        pytest.param(
            reflection_pb2.ServerReflectionRequest(list_services=""),
            lambda r: [s.name for s in r.list_services_response.service] == sorted(SERVICES),
            id="list-services",
        ),
        pytest.param(
            reflection_pb2.ServerReflectionRequest(file_containing_symbol=SERVICE_NAME),
            lambda r: "meshfed/v1/federation.proto" in _files(r),
            id="file-of-a-service",
        ),
        pytest.param(
            reflection_pb2.ServerReflectionRequest(
                file_containing_symbol="meshfed.v1.GetStatusResponse"
            ),
            lambda r: (
                _files(r) == {pb.DESCRIPTOR.name, *(d.name for d in pb.DESCRIPTOR.dependencies)}
            ),
            id="file-of-a-message-with-its-imports",
        ),
        pytest.param(
            reflection_pb2.ServerReflectionRequest(file_containing_symbol="no.such.Symbol"),
            lambda r: r.error_response.error_code == Status.NOT_FOUND.value,
            id="unknown-symbol-not-found",
        ),
        pytest.param(
            reflection_pb2.ServerReflectionRequest(file_by_filename="no/such.proto"),
            lambda r: r.error_response.error_code == Status.NOT_FOUND.value,
            id="unknown-file-not-found",
        ),
        pytest.param(
            reflection_pb2.ServerReflectionRequest(),
            lambda r: r.error_response.error_code == Status.INVALID_ARGUMENT.value,
            id="empty-request-invalid",
        ),
    ],
)
def test_reflection_answers(request_: reflection_pb2.ServerReflectionRequest, check) -> None:  # type: ignore[no-untyped-def]
    response = grpc_std.ReflectionServicer(SERVICES).answer(request_)
    assert response.original_request == request_
    assert check(response), response


async def test_health_check_follows_set_until_shutdown() -> None:
    health = grpc_std.HealthServicer(("", SERVICE_NAME))
    ask = health_pb2.HealthCheckRequest(service=SERVICE_NAME)
    assert (await health.Check(ask, None)).status == grpc_std.NOT_SERVING  # type: ignore[arg-type]
    await health.set(SERVICE_NAME, grpc_std.SERVING)
    assert (await health.Check(ask, None)).status == grpc_std.SERVING  # type: ignore[arg-type]
    listed = await health.List(health_pb2.HealthListRequest(), None)  # type: ignore[arg-type]
    assert {k: v.status for k, v in listed.statuses.items()} == {
        "": grpc_std.NOT_SERVING,
        SERVICE_NAME: grpc_std.SERVING,
    }
    await health.enter_graceful_shutdown()
    await health.set(SERVICE_NAME, grpc_std.SERVING)
    assert (await health.Check(ask, None)).status == grpc_std.NOT_SERVING  # type: ignore[arg-type]
    with pytest.raises(GRPCError) as unknown:
        await health.Check(health_pb2.HealthCheckRequest(service="other"), None)  # type: ignore[arg-type]
    assert unknown.value.status is Status.NOT_FOUND

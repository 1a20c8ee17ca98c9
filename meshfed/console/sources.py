"""The console's two clients: the federator's gRPC API and the store's HTTP query API.

Both carry the operator's credentials (bearer token, TLS, mutual TLS) exactly as ``meshfed
status`` and Grafana would. Errors become ``SourceError`` with a message saying which source
failed and how to fix it; the routes answer it as 502 and the pages show it.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx

from federator.api._generated.meshfed.v1 import federation_pb2 as pb
from federator.api._generated.meshfed.v1 import federation_pb2_grpc as pb_grpc
from meshfed.console.settings import GrpcTarget, StoreTarget, read_token


class SourceError(RuntimeError):
    """A source did not answer; ``str()`` says which and what to check."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code
        """The gRPC status code's name for a federator call (e.g. ``FAILED_PRECONDITION``)."""


def _grpc_error(address: str, error: grpc.RpcError) -> SourceError:
    code = error.code() if isinstance(error, grpc.aio.AioRpcError) else None
    name = code.name if code is not None else "ERROR"
    details = error.details() if isinstance(error, grpc.aio.AioRpcError) else str(error)
    hint = ""
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        hint = " Is `meshfed federate` running there? Point --federator at its listen.grpc."
    elif code == grpc.StatusCode.UNAUTHENTICATED:
        hint = " Pass the API token with --federator-token-file."
    return SourceError(f"federator {address}: {name}: {details}.{hint}", name)


class FederatorSource:
    """Calls of ``meshfed.v1.FederationService`` on one channel (opened by ``start``)."""

    def __init__(self, target: GrpcTarget) -> None:
        self._target = target
        token = read_token(target.token_file, "--federator-token-file")
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._channel: grpc.aio.Channel | None = None
        self._stub: Any = None

    async def start(self) -> None:
        if self._channel is not None:
            return
        t = self._target
        if t.ca is None:
            self._channel = grpc.aio.insecure_channel(t.address)
        else:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=t.ca.read_bytes(),
                private_key=t.key.read_bytes() if t.key else None,
                certificate_chain=t.cert.read_bytes() if t.cert else None,
            )
            options = [("grpc.ssl_target_name_override", t.server_name)] if t.server_name else []
            self._channel = grpc.aio.secure_channel(t.address, credentials, options=options)
        self._stub = pb_grpc.FederationServiceStub(self._channel)

    async def shutdown(self) -> None:
        if self._channel is not None:
            channel, self._channel = self._channel, None
            await channel.close()

    async def _call(self, method: str, request: Any) -> Any:
        if self._stub is None:
            raise SourceError("federator client is not started")
        try:
            return await getattr(self._stub, method)(
                request, timeout=self._target.timeout_s, metadata=self._metadata
            )
        except grpc.RpcError as error:
            raise _grpc_error(self._target.address, error) from None

    async def status(self) -> pb.GetStatusResponse:
        response: pb.GetStatusResponse = await self._call("GetStatus", pb.GetStatusRequest())
        return response

    async def services(self, namespace: str = "") -> list[pb.ServiceStatus]:
        listed: pb.ListServicesResponse = await self._call(
            "ListServices", pb.ListServicesRequest(namespace=namespace)
        )
        return list(listed.services)

    async def service(self, namespace: str, name: str) -> pb.ServiceStatus:
        got: pb.GetServiceResponse = await self._call(
            "GetService", pb.GetServiceRequest(key=pb.ServiceKey(namespace=namespace, name=name))
        )
        return got.service

    async def drills(self) -> list[pb.DrillSummary]:
        listed: pb.ListDrillsResponse = await self._call("ListDrills", pb.ListDrillsRequest())
        return list(listed.drills)

    async def drill(self, namespace: str, name: str) -> pb.DrillSummary:
        """One drill (ListDrills of its namespace); a missing one raises ``SourceError``."""
        listed: pb.ListDrillsResponse = await self._call(
            "ListDrills", pb.ListDrillsRequest(namespace=namespace)
        )
        for d in listed.drills:
            if d.name == name:
                return d
        raise SourceError(f"no drill {namespace}/{name} in the home cluster", "NOT_FOUND")

    async def _stream(self, method: str, request: Any) -> AsyncIterator[Any]:
        if self._stub is None:
            raise SourceError("federator client is not started")
        call = getattr(self._stub, method)(request, metadata=self._metadata)
        try:
            async for item in call:
                yield item
        except grpc.RpcError as error:
            raise _grpc_error(self._target.address, error) from None
        finally:
            call.cancel()

    def watch(self) -> AsyncIterator[pb.Event]:
        """Every change the federator applies, until the caller stops iterating."""
        return self._stream("WatchEvents", pb.WatchEventsRequest())

    def watch_drills(self) -> AsyncIterator[pb.DrillEvent]:
        """Every drill now, then each change of one, until the caller stops iterating."""
        return self._stream("WatchDrills", pb.WatchDrillsRequest())


def _ssl_context(target: StoreTarget) -> ssl.SSLContext | bool:
    if target.ca is None and target.cert is None:
        return True
    context = ssl.create_default_context(cafile=str(target.ca) if target.ca else None)
    if target.cert is not None and target.key is not None:
        context.load_cert_chain(str(target.cert), str(target.key))
    return context


class StoreSource:
    """GETs on the store's query API (Prometheus, traces, logs) and its ``/metrics``."""

    def __init__(self, target: StoreTarget) -> None:
        self._target = target
        token = read_token(target.token_file, "--store-token-file")
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self._target.url.rstrip("/"),
                headers=self._headers,
                timeout=self._target.timeout_s,
                verify=_ssl_context(self._target),
            )

    async def shutdown(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def _get(self, path: str, params: dict[str, Any] | None = None) -> httpx.Response:
        if self._client is None:
            raise SourceError("store client is not started")
        try:
            response = await self._client.get(path, params=params)
        except httpx.HTTPError as error:
            raise SourceError(
                f"store {self._target.url}: {error!r}. Is `meshfed collect` (or `meshfed store "
                f"serve`) running there? Point --store at its http.listen."
            ) from None
        if response.status_code == 401:
            raise SourceError(
                f"store {self._target.url}{path}: 401: pass its token with --store-token-file"
            )
        return response

    async def get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """JSON of a query route; 404 answers ``None``, other errors raise with the store's text."""
        response = await self._get(path, params)
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            try:
                message = response.json().get("error", response.text)
            except ValueError:
                message = response.text
            raise SourceError(f"store {path}: {response.status_code}: {message}")
        return response.json()

    async def metrics_text(self) -> str:
        response = await self._get("/metrics")
        if response.status_code >= 400:
            raise SourceError(f"store /metrics: {response.status_code}: {response.text[:200]}")
        return response.text


async def fetch_text(url: str, timeout_s: float) -> str:
    """A plain GET (the federator's own ``/metrics``)."""
    try:
        async with httpx.AsyncClient(timeout=timeout_s) as client:
            response = await client.get(url)
    except httpx.HTTPError as error:
        raise SourceError(f"{url}: {error!r}") from None
    if response.status_code >= 400:
        raise SourceError(f"{url}: {response.status_code}")
    return response.text

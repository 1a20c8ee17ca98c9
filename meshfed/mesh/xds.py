"""An Aggregated Discovery Service (ADS) client: one gRPC stream to istiod, state of the world.

Speaks the protocol as Envoy does: the first request carries the node; each response is
ACKed with its ``version_info`` and ``response_nonce`` (else istiod waits and then treats the
client as stuck); a subscription is a request naming the resources of one type (none = all,
for CDS and LDS). Responses are read by a thread into a queue and stamped on arrival with
``time.monotonic()``, so a caller can both take a snapshot and measure when an update came.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import grpc

from meshfed.mesh._envoy import (
    AggregatedDiscoveryServiceStub,
    Cluster,
    ClusterLoadAssignment,
    DiscoveryRequest,
    DiscoveryResponse,
    HttpConnectionManager,
    Listener,
    Node,
    RouteConfiguration,
)

CDS = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
EDS = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
LDS = "type.googleapis.com/envoy.config.listener.v3.Listener"
RDS = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
MESSAGES: dict[str, type[Any]] = {
    CDS: Cluster,
    EDS: ClusterLoadAssignment,
    LDS: Listener,
    RDS: RouteConfiguration,
}


class XdsError(RuntimeError):
    """The stream failed or istiod did not answer in time; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Update:
    """One DiscoveryResponse, decoded, with its arrival time (``time.monotonic()``)."""

    type_url: str
    version: str
    received: float
    resources: tuple[Any, ...]

    def by_name(self) -> dict[str, Any]:
        """Resources by their name (``cluster_name`` for EDS)."""
        out: dict[str, Any] = {}
        for r in self.resources:
            out[r.cluster_name if self.type_url == EDS else r.name] = r
        return out


def decode(response: DiscoveryResponse) -> tuple[Any, ...]:
    """Unpack the resources of a response into their Envoy messages."""
    cls = MESSAGES.get(response.type_url)
    if cls is None:
        raise XdsError(f"unexpected resource type {response.type_url} from istiod")
    decoded = []
    for any_msg in response.resources:
        msg = cls()
        if not any_msg.Unpack(msg):
            raise XdsError(f"a {response.type_url} response held a {any_msg.type_url}")
        decoded.append(msg)
    return tuple(decoded)


_END = object()


class AdsClient:
    """One ADS stream to ``address`` (``host:port`` of istiod's plaintext xDS port)."""

    def __init__(self, *, address: str, node: Node) -> None:
        self.address = address
        self.node = node
        self._channel = grpc.insecure_channel(
            address, options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)]
        )
        self._requests: queue.Queue[DiscoveryRequest | object] = queue.Queue()
        self._updates: queue.Queue[Update | BaseException] = queue.Queue()
        self._subscriptions: dict[str, list[str]] = {}
        self._versions: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()
        self._first = True
        stub = AggregatedDiscoveryServiceStub(self._channel)
        self._call = stub.StreamAggregatedResources(self._request_iter())
        self._reader = threading.Thread(target=self._read, name="ads-reader", daemon=True)
        self._reader.start()

    # ---- stream plumbing ---------------------------------------------------------------
    def _request_iter(self) -> Iterator[DiscoveryRequest]:
        while True:
            item = self._requests.get()
            if item is _END:
                return
            assert isinstance(item, DiscoveryRequest)
            yield item

    def _send(self, type_url: str, names: Sequence[str], *, ack: DiscoveryResponse | None) -> None:
        with self._lock:
            req = DiscoveryRequest(type_url=type_url, resource_names=list(names))
            if self._first:
                req.node.CopyFrom(self.node)
                self._first = False
            version, nonce = self._versions.get(type_url, ("", ""))
            if ack is not None:
                version, nonce = ack.version_info, ack.nonce
                self._versions[type_url] = (version, nonce)
            req.version_info, req.response_nonce = version, nonce
            self._requests.put(req)

    def _read(self) -> None:
        try:
            for response in self._call:
                received = time.monotonic()
                resources = decode(response)
                # ACK at once, as Envoy does: the subscription stays what it was
                self._send(
                    response.type_url,
                    self._subscriptions.get(response.type_url, []),
                    ack=response,
                )
                self._updates.put(
                    Update(response.type_url, response.version_info, received, resources)
                )
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.CANCELLED:
                self._updates.put(
                    XdsError(
                        f"xDS stream to {self.address} failed: {err.code().name} {err.details()}"
                    )
                )
        except XdsError as err:
            self._updates.put(err)

    # ---- public API --------------------------------------------------------------------
    def subscribe(self, type_url: str, names: Sequence[str] = ()) -> None:
        """Ask for ``names`` of ``type_url`` (all of them when empty: CDS, LDS)."""
        self._subscriptions[type_url] = list(names)
        self._send(type_url, names, ack=None)

    def next_update(self, timeout: float) -> Update:
        """The next response of any type, waiting at most ``timeout`` seconds."""
        try:
            item = self._updates.get(timeout=timeout)
        except queue.Empty:
            raise XdsError(
                f"istiod at {self.address} sent nothing for {timeout:.0f}s; is it ready "
                "(`meshfed sandbox status`) and is the node's namespace/cluster right?"
            ) from None
        if isinstance(item, BaseException):
            raise item
        return item

    def wait_for(
        self, type_url: str, accept: Callable[[Update], bool], *, timeout: float
    ) -> Update:
        """The first update of ``type_url`` that ``accept`` takes; others are skipped."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise XdsError(f"no acceptable {type_url.rsplit('.', 1)[-1]} within {timeout:.0f}s")
            update = self.next_update(left)
            if update.type_url == type_url and accept(update):
                return update

    def fetch(self, type_url: str, names: Sequence[str] = (), *, timeout: float = 10.0) -> Update:
        """Subscribe and return the first response of that type."""
        self.subscribe(type_url, names)
        return self.wait_for(type_url, lambda _: True, timeout=timeout)

    def close(self) -> None:
        self._requests.put(_END)
        self._call.cancel()
        self._channel.close()
        self._reader.join(5)

    def __enter__(self) -> AdsClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What istiod served one node: clusters, endpoints, listeners and routes by name."""

    node_id: str
    clusters: dict[str, Cluster]
    endpoints: dict[str, ClusterLoadAssignment]
    listeners: dict[str, Listener]
    routes: dict[str, RouteConfiguration]


def eds_names(clusters: dict[str, Cluster]) -> list[str]:
    """The EDS resource names of the EDS clusters (the service name, else the cluster's)."""
    names = []
    for name, c in clusters.items():
        if c.type == Cluster.EDS:
            names.append(c.eds_cluster_config.service_name or name)
    return sorted(names)


def rds_names(listeners: dict[str, Listener]) -> list[str]:
    """Route configuration names referenced by the listeners' HTTP connection managers."""
    names: set[str] = set()
    for listener in listeners.values():
        for chain in [*listener.filter_chains, listener.default_filter_chain]:
            for f in chain.filters:
                if f.typed_config.Is(HttpConnectionManager.DESCRIPTOR):
                    manager = HttpConnectionManager()
                    f.typed_config.Unpack(manager)
                    if manager.HasField("rds"):
                        names.add(manager.rds.route_config_name)
    return sorted(names)


def snapshot(
    *, address: str, node: Node, timeout: float = 10.0, listeners: bool = True
) -> Snapshot:
    """CDS, then EDS for every EDS cluster, then (``listeners``) LDS and RDS, in Envoy's
    order; one stream, closed afterwards."""
    with AdsClient(address=address, node=node) as client:
        clusters = client.fetch(CDS, timeout=timeout).by_name()
        names = eds_names(clusters)
        endpoints = client.fetch(EDS, names, timeout=timeout).by_name() if names else {}
        lds: dict[str, Any] = {}
        rds: dict[str, Any] = {}
        if listeners:
            lds = client.fetch(LDS, timeout=timeout).by_name()
            routes = rds_names(lds)
            rds = client.fetch(RDS, routes, timeout=timeout).by_name() if routes else {}
    return Snapshot(node.id, clusters, endpoints, lds, rds)

"""A small typed async Kubernetes client over httpx: list, watch stream, get, apply, delete, events.

Why not the official ``kubernetes`` package (docs/adr/0004-own-kubernetes-client.md, with the
figures): its synchronous client needs a thread per watch and its asyncio one brings aiohttp
next to httpx, both watch helpers retry ``410 Gone`` once and then raise instead of
relisting, and importing it costs more memory than this whole layer. The federator needs few
verbs, so a thin client over ``httpx.AsyncClient`` with the kubeconfig's CA and inline
credentials is smaller and lets every failure be classified once (``federator.kube.failures``;
the classes are in ``federator.errors``):

- connection failures, timeouts, 429, 5xx and 409 (conflict) -> ``ApiRetryableError``
  (``retry_after`` carries a server ``Retry-After``); 410 -> ``ExpiredError`` (relist);
- 400, 401, 403, 404 (except where "absent" is an answer), 422 -> ``ApiPermanentError``.

Writes are **server-side apply** (``PATCH application/apply-patch+yaml``, ``fieldManager=meshfed``,
``force=true``). ``force`` only takes over the fields meshfed itself sets when another manager
changed them (meshfed is the authority for its own objects, as controllers are); fields other
managers set and meshfed does not are left alone by SSA regardless of ``force`` (R5).
Deletes carry ``preconditions`` (uid and resourceVersion), so an object changed since it was
read is not deleted (the apiserver answers 409, retried after a fresh read).

Fencing (R5): a client built with a ``WriteFence`` asks it before every write request (apply,
delete, event) and again, through an httpcore trace hook, at the last moment before the
request's bytes are written to the connection; a fence that refuses raises ``NotLeaderError``
and nothing is sent (``federator.kube.leader``). Each fenced write also carries the fence's
server deadline as ``?timeout=``, so the apiserver drops one whose body a pause delayed.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, cast

import httpx
from typing_extensions import TypeVar

from federator.core.model import FIELD_MANAGER, ClusterId
from federator.errors import ApiRetryableError
from federator.kube.failures import classify
from federator.kube.fence import WriteFence, fence_trace, go_duration
from federator.kube.resources import EVENTS, WRITTEN, Resource
from federator.kube.tls import ssl_context
from federator.kube.token_file import FileToken

Object = dict[str, Any]
T = TypeVar("T", default=Object)
"""What a ``transform`` makes of an object (the object itself without one)."""


def user_agent(pid: int | None = None) -> str:
    """Names the process (this one by default), so an apiserver's audit log tells two
    replicas' writes apart."""
    return f"meshfed-federator (pid {os.getpid() if pid is None else pid})"


@dataclass(frozen=True, slots=True)
class Credentials:
    """How to reach one apiserver (from a kubeconfig that passed the safety check)."""

    server: str
    ca_pem: bytes | None = None
    token: str | None = None
    token_file: str | None = None
    """A file holding the token, re-read when it changes (the in-cluster service account's
    projected token, which the kubelet rotates); takes precedence over ``token``."""
    cert_pem: bytes | None = None
    key_pem: bytes | None = None
    username: str | None = None
    password: str | None = None


@dataclass(frozen=True, slots=True)
class ListResult(Generic[T]):
    items: list[T]
    resource_version: str


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Client timeouts (seconds)."""

    connect: float = 5.0
    """TCP+TLS connect timeout."""
    request: float = 30.0
    """Read timeout of ordinary (non-watch) requests."""


class KubeClient:
    """Async client of one cluster's apiserver. ``aclose()`` when done."""

    def __init__(
        self,
        *,
        cluster: ClusterId,
        credentials: Credentials,
        timeouts: Timeouts | None = None,
        fence: WriteFence | None = None,
    ) -> None:
        self.cluster = cluster
        self.fence = fence
        """Asked before every write request (None: writes are not fenced)."""
        self.server = credentials.server.rstrip("/")
        self._timeouts = timeouts or Timeouts()
        headers = {"Accept": "application/json", "User-Agent": user_agent()}
        if credentials.token:
            headers["Authorization"] = f"Bearer {credentials.token}"
        auth: httpx.Auth | None = None
        if credentials.username is not None and credentials.password is not None:
            auth = httpx.BasicAuth(credentials.username, credentials.password)
        if credentials.token_file:
            auth = FileToken(credentials.token_file)
        self._http = httpx.AsyncClient(
            base_url=self.server,
            headers=headers,
            auth=auth,
            verify=ssl_context(
                ca_pem=credentials.ca_pem,
                cert_pem=credentials.cert_pem,
                key_pem=credentials.key_pem,
            ),
            timeout=httpx.Timeout(self._timeouts.request, connect=self._timeouts.connect),
            # HTTP/1.1 on purpose: httpcore's HTTP/2 reads all streams through one lock that a
            # task holds while it waits for its own stream's data, so a request sent after
            # three idle watches waits for a watch's next event (~1 min: the next bookmark).
            # Keep every connection alive: with fewer, each burst of concurrent reads and
            # applies closed the extra ones and the next reopened them, a TLS handshake each
            # (measured at 10 clusters: ~700 connections opened in 20 s instead of ~100).
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
        )
        self.writes = 0
        """Write requests sent (apply, delete, event): lets tests and benchmarks count writes."""

    async def aclose(self) -> None:
        """Close the connections (idempotent)."""
        await self._http.aclose()

    @property
    def closed(self) -> bool:
        return self._http.is_closed

    async def _request(
        self,
        method: str,
        path: str,
        what: str,
        *,
        params: Mapping[str, str] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        extensions: dict[str, Any] = {}
        if method != "GET" and self.fence is not None:
            self.fence.check(what)
            extensions["trace"] = fence_trace(self.fence, what)
            # The apiserver's half of the fence (kube/fence.py): a write it has not finished
            # this long after its head arrived is dropped, however late its body comes.
            deadline = go_duration(self.fence.server_deadline_seconds)
            params = {**(params or {}), "timeout": deadline}
        try:
            response = await self._http.request(
                method, path, params=params, content=content, headers=headers, extensions=extensions
            )
        except httpx.HTTPError as exc:
            raise ApiRetryableError(f"{what} in {self.cluster}: {exc!r}") from exc
        return response

    async def list(
        self,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        limit: int = 500,
        resource_version: str | None = None,
        transform: Callable[[Object], T] | None = None,
    ) -> ListResult[T]:
        """Every object (paged with ``continue``); the list's resourceVersion to watch from.
        ``transform`` is applied to each object as its page is decoded (client-go's informer
        transform), so a large list is never held whole before a cache slims it.

        ``resource_version="0"`` lets the apiserver answer from its watch cache (possibly a
        few milliseconds stale) instead of a consistent read from etcd, which decodes every
        object of the kind and costs 10-100x more on a busy apiserver."""
        what = f"list {resource.plural} in {self.cluster}"
        items: list[T] = []
        params: dict[str, str] = {"limit": str(limit)}
        if label_selector:
            params["labelSelector"] = label_selector
        if resource_version is not None:
            params["resourceVersion"] = resource_version
        for _ in range(10_000):
            response = await self._request("GET", resource.path(namespace), what, params=params)
            if response.status_code != 200:
                raise classify(response, what)
            body = response.json()
            del response
            for item in body.get("items") or []:
                item.setdefault("apiVersion", resource.api_version)
                item.setdefault("kind", resource.kind)
                items.append(cast("T", item) if transform is None else transform(item))
            meta = body.get("metadata") or {}
            # Nothing of a decoded page may outlive it into the next request: every list of
            # every cluster awaits at once, and a page held across that await (its objects'
            # managedFields are thousands of small dicts and strings) made start-up at the
            # published shape hold ~100,000 of them per 3 clusters, whose freed memory the
            # allocator could not give back afterwards (docs/federator.md, Memory).
            del body
            cont = meta.get("continue")
            if not cont:
                return ListResult(items=items, resource_version=str(meta.get("resourceVersion")))
            params["continue"] = cont
            params.pop("resourceVersion", None)  # a continue token carries its own version
        raise ApiRetryableError(f"{what}: too many pages")

    async def watch_stream(
        self,
        resource: Resource,
        *,
        resource_version: str,
        timeout_seconds: int,
        label_selector: str | None = None,
    ) -> AsyncIterator[Object]:
        """Raw watch events (``{"type", "object"}``) from ``resource_version``, with bookmarks.

        Ends when the server closes the watch (after ``timeout_seconds``); raises
        ``ExpiredError`` for 410 and ``ApiRetryableError`` for connection problems."""
        what = f"watch {resource.plural} in {self.cluster}"
        params = {"watch": "1", "resourceVersion": resource_version, "allowWatchBookmarks": "true"}
        params["timeoutSeconds"] = str(timeout_seconds)
        if label_selector:
            params["labelSelector"] = label_selector
        timeout = httpx.Timeout(timeout_seconds + 30.0, connect=self._timeouts.connect)
        try:
            async with self._http.stream(
                "GET", resource.path(), params=params, timeout=timeout
            ) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise classify(response, what)
                async for line in response.aiter_lines():
                    if line:
                        yield json.loads(line)
        except httpx.HTTPError as exc:
            raise ApiRetryableError(f"{what}: {exc!r}") from exc

    async def get(self, resource: Resource, namespace: str | None, name: str) -> Object | None:
        """The object, or None if it does not exist."""
        what = f"get {resource.kind} {namespace}/{name} in {self.cluster}"
        response = await self._request("GET", resource.path(namespace, name), what)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise classify(response, what)
        result: Object = response.json()
        return result

    async def write_json(
        self, method: str, resource: Resource, namespace: str, body: Mapping[str, Any]
    ) -> Object:
        """POST (create) or PUT (replace, with the body's resourceVersion as precondition: 409
        if the object changed since it was read) ``body``; not counted in ``writes``."""
        name = None if method == "POST" else body["metadata"]["name"]
        what = f"{method} {resource.kind} {namespace}/{name or ''} in {self.cluster}"
        response = await self._request(
            method,
            resource.path(namespace, name),
            what,
            content=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        if response.status_code not in (200, 201):
            raise classify(response, what)
        result: Object = response.json()
        return result

    async def apply(
        self, manifest: Mapping[str, Any], *, resource: Resource | None = None,
        field_manager: str = FIELD_MANAGER,
    ) -> Object:  # fmt: skip
        """Server-side apply ``manifest`` (force: see module docstring); ``resource`` defaults
        to the kind's entry in ``WRITTEN``, for the kinds the federator writes."""
        resource = resource or WRITTEN[manifest["kind"]]
        meta = manifest["metadata"]
        what = f"apply {resource.kind} {meta['namespace']}/{meta['name']} in {self.cluster}"
        self.writes += 1
        response = await self._request(
            "PATCH",
            resource.path(meta["namespace"], meta["name"]),
            what,
            params={"fieldManager": field_manager, "force": "true"},
            content=json.dumps(manifest).encode(),  # JSON is YAML
            headers={"Content-Type": "application/apply-patch+yaml"},
        )
        if response.status_code not in (200, 201):
            raise classify(response, what)
        result: Object = response.json()
        return result

    async def delete(
        self, resource: Resource, namespace: str, name: str, *, uid: str, resource_version: str
    ) -> bool:
        """Delete only if the object is still the one read (uid + resourceVersion).

        True when deleted, False when already gone; 409 (changed meanwhile) is retryable."""
        what = f"delete {resource.kind} {namespace}/{name} in {self.cluster}"
        body = {
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "preconditions": {"uid": uid, "resourceVersion": resource_version},
        }
        self.writes += 1
        response = await self._request(
            "DELETE",
            resource.path(namespace, name),
            what,
            content=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        if response.status_code == 404:
            return False
        if response.status_code not in (200, 202):
            raise classify(response, what)
        return True

    async def create_event(
        self, *, involved: Mapping[str, Any], reason: str, message: str, kind: str = "Warning"
    ) -> None:
        """Record a core/v1 Event on ``involved`` (an object as read: needs uid)."""
        meta = involved["metadata"]
        namespace = meta["namespace"]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.meshfed-", "namespace": namespace},
            "involvedObject": {
                "apiVersion": involved.get("apiVersion", "v1"),
                "kind": involved.get("kind", "Service"),
                "name": meta["name"],
                "namespace": namespace,
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "reason": reason,
            "message": message[:1024],
            "type": kind,
            "source": {"component": FIELD_MANAGER},
            "reportingComponent": FIELD_MANAGER,
            "reportingInstance": FIELD_MANAGER,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        what = f"create Event on {namespace}/{meta['name']} in {self.cluster}"
        self.writes += 1
        response = await self._request(
            "POST",
            EVENTS.path(namespace),
            what,
            content=json.dumps(event).encode(),
            headers={"Content-Type": "application/json"},
        )
        if response.status_code not in (200, 201):
            raise classify(response, what)

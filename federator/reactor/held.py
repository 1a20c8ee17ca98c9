"""What a cluster cache holds of each watched object (``federator.reactor.cache``): its slim
form (``slim``) as compact JSON (``encode``/``decode``), and the ``held`` form the watches hand
over.

Why the watches transform every object into the held form at once (as client-go's informer
transform does): a relist's items are kept until the last page arrived, and every cluster
relists at once at start-up. Held as slim dicts (a slice's are dozens of small tuples and
strings), the relists' items were short-lived small objects interleaved with the ones the
caches keep, and Python's allocator keeps every arena that still holds one kept object
(measured against the published shape's sandbox: 10 caches relisting Services, slices, pods
and namespaces at once left 41 arenas of 1 MiB holding 18 MiB of objects; with the held
form, 24). The held form is what the cache stores - the key and the encoded bytes - so a
relist's only short-lived object is one small tuple per item.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple

from federator.core import convert
from federator.core.mapping import ENDPOINT_SLICES, NAMESPACES, PODS, SERVICES
from federator.reactor.pods import SlimPod, slim_pod

Object = dict[str, Any]
ObjKey = tuple[str, str]


class Held(NamedTuple):
    """A watched object (not a pod) as a cache stores it: its key and its encoded slim form."""

    key: ObjKey
    blob: bytes


_META_KEPT = ("name", "namespace", "uid", "resourceVersion", "creationTimestamp", "labels")
_SLICE_META_KEPT = ("name", "namespace", "resourceVersion", "labels")
"""A slice's uid and creation time are never read (a Service's are: Events and the oldest
export)."""
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_SERVICE_SPEC_READ = ("type", "ports", "selector")
"""What is read of a Service's spec: ports, ExternalName or not, and the selector (access
policies select the exporting workloads with it)."""


def held(obj: Mapping[str, Any], kind: str) -> Held | SlimPod:
    """The form a cache stores ``obj`` of ``kind`` in: the watches' transform."""
    if kind == PODS:
        return slim_pod(obj)
    slimmed = slim(obj, kind)
    return Held(objkey(slimmed), encode(slimmed))


def slim(obj: Mapping[str, Any], kind: str) -> Object:
    """What the federator reads of a watched object other than a pod (``slim_pod``), nothing
    else (idempotent).

    Memory at scale is these caches (10 clusters x thousands of Services and EndpointSlices),
    so they keep: identity, labels, annotations (without kubectl's last-applied copy of the
    whole object), a Service's type, ports, selector and load-balancer status (gateway
    addresses), a slice's address type, ports and per endpoint its addresses, readiness,
    zone and pod (a ``convert.SliceEndpoint``, not a dict). Dropped: managedFields (most of
    an object's size), owner references, endpoint conditions other than ``ready``, node
    names, hints, a targetRef's uid and version, a slice's uid and creation time."""
    m = convert.meta(obj)
    kept = _SLICE_META_KEPT if kind == ENDPOINT_SLICES else _META_KEPT
    meta: Object = {k: m[k] for k in kept if k in m}
    annotations = m.get("annotations")
    if isinstance(annotations, Mapping) and annotations:
        kept_annotations = {k: v for k, v in annotations.items() if k != _LAST_APPLIED}
        if kept_annotations:
            meta["annotations"] = kept_annotations
    if kind == NAMESPACES:
        return {"metadata": meta}
    out: Object = {k: v for k, v in obj.items() if k not in ("metadata", "endpoints", "status")}
    out["metadata"] = meta
    if kind == SERVICES:
        spec = obj.get("spec")
        if isinstance(spec, Mapping):
            out["spec"] = {k: spec[k] for k in _SERVICE_SPEC_READ if k in spec}
        status = obj.get("status")
        balancer = status.get("loadBalancer") if isinstance(status, Mapping) else None
        if balancer:  # only gateways have addresses here
            out["status"] = {"loadBalancer": balancer}
    elif "status" in obj:
        out["status"] = obj["status"]
    if kind == ENDPOINT_SLICES:
        namespace = str(meta.get("namespace", ""))
        compact = (convert.slice_endpoint(ep, namespace) for ep in obj.get("endpoints") or ())
        out["endpoints"] = tuple(ep for ep in compact if ep is not None)
    return out


def encode(obj: Object) -> bytes:
    """How the cache holds a slim object (a ``SliceEndpoint`` becomes a JSON array)."""
    return json.dumps(obj, separators=(",", ":")).encode()


def decode(kind: str, blob: bytes) -> Object:
    """The slim object ``encode`` held (a slice's endpoints as ``SliceEndpoint`` again)."""
    obj: Object = json.loads(blob)
    if kind == ENDPOINT_SLICES:
        obj["endpoints"] = tuple(
            convert.SliceEndpoint(tuple(addresses), ready, zone, tuple(pod) if pod else None)
            for addresses, ready, zone, pod in obj.get("endpoints") or ()
        )
    return obj


def objkey(obj: Mapping[str, Any]) -> ObjKey:
    m = convert.meta(obj)
    return (str(m.get("namespace", "")), str(m.get("name", "")))

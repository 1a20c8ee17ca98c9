"""How the owned index holds an object: compacted, compressed, and shared between targets.

Split from ``federator.reconcile.owned`` (the index's bookkeeping) because this is the part
that decides its memory. An object is kept as the fields the diff reads (``compact``),
JSON-encoded and compressed against a preset DEFLATE dictionary, with its uid and
resourceVersion held outside the compressed body: then the same ServiceEntry or
DestinationRule in several target clusters has byte-identical bodies, and a ``BlobPool``
keeps one copy of each. Measured on the published shape's objects (docs/federator.md,
Memory): the bodies are most of the index, and a global service's are alike in all targets.
"""

from __future__ import annotations

import json
import uuid
import zlib
from collections.abc import Hashable, Mapping
from typing import Any, Generic, TypeVar

from federator.core.model import FIELD_MANAGER

Object = dict[str, Any]
H = TypeVar("H", bound=Hashable)

_META_KEPT = ("name", "namespace", "uid", "resourceVersion", "labels", "annotations")
_ZDICT = json.dumps(
    {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "spec": {
            "host": ".svc.clusterset.local",
            "trafficPolicy": {
                "loadBalancer": {"localityLbSetting": {"enabled": True, "failover": []}},
                "outlierDetection": {
                    "baseEjectionTime": "30s", "consecutive5xxErrors": 5, "interval": "10s",
                    "maxEjectionPercent": 100,
                },
                "tls": {"mode": "ISTIO_MUTUAL"},
            },
            "subsets": [{"name": "", "labels": {"meshfed.io/cluster": ""}}],
            "hosts": [], "location": "MESH_INTERNAL", "resolution": "STATIC",
            "ports": [{"name": "http", "number": 80, "protocol": "HTTP", "targetPort": 80}],
            "endpoints": [
                {
                    "address": "", "network": "",
                    "labels": {
                        "meshfed.io/cluster": "", "security.istio.io/tlsMode": "istio",
                        "topology.istio.io/cluster": "",
                    },
                    "locality": "", "ports": {"http": 15443},
                }
            ],
        },
        "metadata": {
            "name": "meshfed-", "namespace": "", "uid": "", "resourceVersion": "",
            "labels": {"app.kubernetes.io/managed-by": "meshfed", "meshfed.io/service": ""},
            "annotations": {"meshfed.io/service": "", "meshfed.io/source-clusters": ""},
            "managedFields": [
                {
                    "apiVersion": "networking.istio.io/v1", "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:metadata": {"f:annotations": {}, "f:labels": {}}, "f:spec": {}},
                    "manager": FIELD_MANAGER, "operation": "Apply", "time": "",
                }
            ],
        },
    },
    separators=(",", ":"),
).encode()  # fmt: skip
"""A preset DEFLATE dictionary of what every owned object repeats: compressed alone, an
object of ~1 KB of JSON shrinks ~2x; against this dictionary its field names and the
values meshfed always writes cost a few bytes each."""


def compact(obj: Mapping[str, Any]) -> Object:
    """The fields the diff reads (see the module docstring)."""
    meta = obj.get("metadata") or {}
    out_meta = {k: meta[k] for k in _META_KEPT if k in meta}
    own = [
        entry
        for entry in meta.get("managedFields") or []
        if entry.get("manager") == FIELD_MANAGER and entry.get("operation") == "Apply"
    ]
    if own:
        out_meta["managedFields"] = own
    out: Object = {k: obj[k] for k in ("apiVersion", "kind", "spec") if k in obj}
    out["metadata"] = out_meta
    return out


class SharedPool(Generic[H]):
    """One copy of each distinct value, shared by the indexes of every target.

    Why: a global service's ServiceEntry and DestinationRule are the same object in every
    target cluster but for their uid and resourceVersion (which are kept per object, outside
    the body), and so is the tuple of a group's idents. At 10 clusters the same value is
    held 9 times; pooled, once. Reference-counted, so values of changed or deleted objects
    do not accumulate."""

    def __init__(self) -> None:
        self._values: dict[H, H] = {}
        self._refs: dict[H, int] = {}

    def __len__(self) -> int:
        return len(self._values)

    def take(self, value: H) -> H:
        """The pooled copy of ``value`` (now referenced once more)."""
        held = self._values.setdefault(value, value)
        self._refs[held] = self._refs.get(held, 0) + 1
        return held

    def release(self, value: H) -> None:
        left = self._refs.get(value, 0) - 1
        if left > 0:
            self._refs[value] = left
        else:
            self._refs.pop(value, None)
            self._values.pop(value, None)


BlobPool = SharedPool[bytes]
"""The pool of compressed bodies."""


Version = int | str | None
"""A resourceVersion as an int when it is one (what etcd3 storage produces), else as sent."""
Uid = int | str
"""A uid as the 128-bit int of its UUID when it is one in canonical form, else as sent."""


def encode(obj: Mapping[str, Any]) -> tuple[Version, Uid, bytes]:
    """(version, uid, body): the body is the compacted object without the per-object
    fields (uid, resourceVersion, the managedFields entry's time), so that the same object
    in several targets has the same body."""
    out = compact(obj)
    meta = out["metadata"] = dict(out["metadata"])
    raw_version, raw_uid = meta.pop("resourceVersion", None), meta.pop("uid", "")
    if "managedFields" in meta:
        meta["managedFields"] = [
            {k: v for k, v in entry.items() if k != "time"} for entry in meta["managedFields"]
        ]
    deflate = zlib.compressobj(1, zlib.DEFLATED, -15, zdict=_ZDICT)
    # sorted keys: equal objects get equal bodies whatever order a server wrote them in
    text = json.dumps(out, separators=(",", ":"), sort_keys=True).encode()
    return (
        _pack_version(raw_version),
        _pack_uid(str(raw_uid)),
        deflate.compress(text) + deflate.flush(),
    )


def decode(version: Version, uid: Uid, body: bytes) -> Object:
    inflate = zlib.decompressobj(-15, zdict=_ZDICT)
    decoded: Object = json.loads(inflate.decompress(body) + inflate.flush())
    meta = decoded["metadata"]
    if uid != "":
        meta["uid"] = uid if isinstance(uid, str) else str(uuid.UUID(int=uid))
    if version is not None:
        meta["resourceVersion"] = str(version)
    return decoded


def _pack_version(raw: Any) -> Version:
    if raw is None:
        return None
    text = str(raw)
    return int(text) if text.isdigit() and str(int(text)) == text else text


def _pack_uid(raw: str) -> Uid:
    try:
        parsed = uuid.UUID(raw)
    except ValueError:
        return raw
    return parsed.int if str(parsed) == raw else raw


def comparable(version: Version) -> int | None:
    return version if isinstance(version, int) else None

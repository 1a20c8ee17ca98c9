"""What the caches keep of pods: their subset labels under a shared ``namespace/name`` string
(``federator.reactor.cache``), and the pods an EndpointSlice names."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

from federator.core import convert
from federator.core.model import SUBSET_LABELS

Object = dict[str, Any]
ObjKey = tuple[str, str]


PodRef = str
"""``namespace/name`` of a pod, interned. Why not an ``ObjKey``: a pod is a key of two
indexes (its labels, and the services whose slices name it), 40,000 pods at the published
shape; one shared string each costs ~0.1 KB a pod less than a tuple in each."""


def pod_ref(namespace: str, name: str) -> PodRef:
    return sys.intern(f"{namespace}/{name}")


class SlimPod(NamedTuple):
    """What a cache keeps of a pod (``slim_pod``)."""

    ref: PodRef
    labels: str
    """Its subset labels as compact JSON, interned: the pods of one workload version share
    one string."""


def slim_pod(obj: Mapping[str, Any] | SlimPod) -> SlimPod:
    """A pod's slim form, both strings interned, so a relist of thousands of pods is one
    small tuple each until the cache holds it (idempotent). Of a pod only these are read:
    an Istio workload's pod carries ~8 labels, a uid, times and a status, at 4,000 pods
    per cluster."""
    if isinstance(obj, SlimPod):
        return obj
    m = convert.meta(obj)
    labels = m.get("labels")
    subset = (
        {k: str(labels[k]) for k in SUBSET_LABELS if k in labels}
        if isinstance(labels, Mapping)
        else {}
    )
    return SlimPod(
        pod_ref(str(m.get("namespace", "")), str(m.get("name", ""))),
        sys.intern(json.dumps(subset, separators=(",", ":"), sort_keys=True)),
    )


class PodLabels(Mapping[ObjKey, Mapping[str, str]]):
    """The cached pods seen as (namespace, name) -> labels, each decoded when looked up."""

    def __init__(self, pods: Mapping[PodRef, str]) -> None:
        self._pods = pods

    def __getitem__(self, key: ObjKey) -> Mapping[str, str]:
        labels = json.loads(self._pods[f"{key[0]}/{key[1]}"])
        return labels if isinstance(labels, Mapping) else {}

    def __iter__(self) -> Iterator[ObjKey]:
        for ref in self._pods:
            namespace, _, name = ref.partition("/")
            yield namespace, name

    def __len__(self) -> int:
        return len(self._pods)


def pods_of(slice_obj: Mapping[str, Any]) -> set[PodRef]:
    """The pods an EndpointSlice's endpoints name in their ``targetRef``."""
    namespace = str(convert.meta(slice_obj).get("namespace", ""))
    out: set[PodRef] = set()
    for raw in slice_obj.get("endpoints") or ():
        ep = convert.slice_endpoint(raw, namespace)
        if ep is not None and ep.pod is not None:
            out.add(pod_ref(*ep.pod))
    return out

"""A compact, watch-fed index of the objects meshfed owns in one target cluster.

Why: a reconcile diffs each target against what meshfed owns there for the key. Reading it
with a LIST per target and change was the largest cost a change had over a plain apply loop,
and grows with the targets: at 10 clusters a change fans out to 10 LIST round trips (plus
their JSON decoding, on the federator's one event loop) before the first apply. With this
index a reconcile reads nothing before it writes (controller-runtime's cached client does
the same for the same reason).

What it holds: per watched kind (ServiceEntries, DestinationRules, AuthorizationPolicies,
listed and watched with the ownership label selector by ``federator.reactor.sources``), the
objects as the diff needs them - identity, uid, resourceVersion, labels, annotations, spec
and meshfed's own ``managedFields`` entry (other writers' entries and ``status`` are
dropped) - stored as zlib-compressed JSON, grouped by (namespace, ``meshfed.io/service``
label). A key's objects are decoded only when that key is reconciled.

Consistency (a reconcile right after our own write must see that write, or it would write
again or miss a prune):

- the reconciler records every apply response (``applied``) and every delete (``deleted``)
  here at once, before the watch delivers them;
- a watch event never moves an object back: an event older than what is held (by
  resourceVersion, compared as integers, which is what the apiserver's etcd3 storage
  produces; a version that is not an integer is simply accepted) is ignored, and so is an
  event that predates our own delete of that object (a tombstone, cleared by the watch's
  ``DELETED`` event or a relist);
- a relist (first list, after a 410 or a reconnect) replaces a kind's whole content, so what
  changed during a watch gap is corrected (level-based: nothing is lost for good);
- while a kind is not synced or its watch is disconnected, ``owned`` answers None and the
  reconciler lists as before (``list_owned``): the index is an optimisation, never a source
  of stale truth beyond what the apiserver's own watch cache serves.
"""

from __future__ import annotations

import asyncio
import json
import zlib
from collections.abc import Iterable, Mapping
from typing import Any

from federator.core.model import (
    FIELD_MANAGER,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    SERVICE_LABEL,
    ObjectRef,
    ServiceKey,
)
from federator.core.render import service_label_value
from federator.core.render_policy import is_egress_key
from federator.errors import PermanentError
from federator.kube.client import DESTINATION_RULES, SERVICE_ENTRIES, KubeClient, Resource

OWNED_SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"
Object = dict[str, Any]
Group = tuple[str, str]
"""(namespace, ``meshfed.io/service`` label value; "" when the object has none)."""
Name = tuple[str, str]
"""(kind, name) within a group."""

_META_KEPT = ("name", "namespace", "uid", "resourceVersion", "labels", "annotations")


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


def _encode(obj: Mapping[str, Any]) -> bytes:
    return zlib.compress(json.dumps(compact(obj), separators=(",", ":")).encode(), 1)


def _version(obj: Mapping[str, Any]) -> int | None:
    raw = (obj.get("metadata") or {}).get("resourceVersion")
    try:
        return int(str(raw))
    except (TypeError, ValueError):
        return None


def _older(new: int | None, held: int | None) -> bool:
    return new is not None and held is not None and new < held


def _where(obj: Mapping[str, Any]) -> tuple[Group, Name]:
    meta = obj.get("metadata") or {}
    label = (meta.get("labels") or {}).get(SERVICE_LABEL, "")
    group = (str(meta.get("namespace", "")), str(label))
    return group, (str(obj.get("kind", "")), str(meta.get("name", "")))


class OwnedIndex:
    """See the module docstring. One per target cluster; single event loop, no locks."""

    def __init__(self) -> None:
        self._groups: dict[Group, dict[Name, tuple[int | None, bytes]]] = {}
        self._group_of: dict[tuple[str, str, str], Group] = {}
        """(kind, namespace, name) -> its group (an object whose label changed moves)."""
        self._tombstones: dict[tuple[str, str, str], int | None] = {}
        """Objects we deleted -> the version we deleted; older events of them are ignored."""
        self._ready: set[str] = set()
        """Kinds listed and currently watched."""

    def __len__(self) -> int:
        return len(self._group_of)

    # ---- readiness
    def ready(self, kinds: Iterable[str]) -> bool:
        return all(k in self._ready for k in kinds)

    def disconnected(self, kind: str) -> None:
        """The watch of ``kind`` failed: answer None for it until the next relist."""
        self._ready.discard(kind)

    # ---- the watches
    def replace(self, kind: str, items: Iterable[Mapping[str, Any]]) -> None:
        """A relist of ``kind``: the complete set (objects gone during a gap disappear)."""
        for ident in [i for i in self._group_of if i[0] == kind]:
            self._remove(ident)
        self._tombstones = {i: v for i, v in self._tombstones.items() if i[0] != kind}
        for obj in items:
            self._put(obj)
        self._ready.add(kind)

    def apply_event(self, event_type: str, obj: Mapping[str, Any]) -> None:
        """One watch event (ADDED, MODIFIED, DELETED)."""
        ident = _ident(obj)
        version = _version(obj)
        if event_type == "DELETED":
            self._tombstones.pop(ident, None)
            if not _older(version, self._held_version(ident)):
                self._remove(ident)
            return
        if ident in self._tombstones and not _older(self._tombstones[ident], version):
            return  # an event from before our own delete of it
        self._tombstones.pop(ident, None)
        if _older(version, self._held_version(ident)):
            return  # our own apply's response is already newer
        self._put(obj)

    # ---- our own writes
    def applied(self, obj: Mapping[str, Any]) -> None:
        """The apiserver's response to our apply of ``obj``."""
        ident = _ident(obj)
        self._tombstones.pop(ident, None)
        if not _older(_version(obj), self._held_version(ident)):
            self._put(obj)

    def deleted(self, kind: str, namespace: str, name: str, resource_version: str) -> None:
        """We deleted the object (its version as we read it; the delete's precondition)."""
        ident = (kind, namespace, name)
        self._remove(ident)
        try:
            self._tombstones[ident] = int(resource_version)
        except ValueError:
            self._tombstones[ident] = None

    def record(self, applied: Iterable[Object], deleted: Iterable[tuple[ObjectRef, str]]) -> None:
        """A write batch's outcome (``federator.reconcile.apply.ApplyOutcome``)."""
        for obj in applied:
            self.applied(obj)
        for ref, version in deleted:
            self.deleted(ref.kind, ref.namespace, ref.name, version)

    # ---- reads
    def owned(self, namespace: str, label: str, kinds: Iterable[str]) -> list[Object] | None:
        """The objects of ``kinds`` in the group, decoded; None if a kind is not ready."""
        kinds = tuple(kinds)
        if not self.ready(kinds):
            return None
        group = self._groups.get((namespace, label), {})
        return [
            json.loads(zlib.decompress(blob))
            for (kind, _), (_, blob) in sorted(group.items())
            if kind in kinds
        ]

    # ---- internals
    def _held_version(self, ident: tuple[str, str, str]) -> int | None:
        group = self._group_of.get(ident)
        if group is None:
            return None
        return self._groups[group][(ident[0], ident[2])][0]

    def _put(self, obj: Mapping[str, Any]) -> None:
        ident = _ident(obj)
        group, name = _where(obj)
        if self._group_of.get(ident, group) != group:
            self._remove(ident)
        self._groups.setdefault(group, {})[name] = (_version(obj), _encode(obj))
        self._group_of[ident] = group

    def _remove(self, ident: tuple[str, str, str]) -> None:
        group = self._group_of.pop(ident, None)
        if group is None:
            return
        members = self._groups[group]
        members.pop((ident[0], ident[2]), None)
        if not members:
            del self._groups[group]


def _ident(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    meta = obj.get("metadata") or {}
    return str(obj.get("kind", "")), str(meta.get("namespace", "")), str(meta.get("name", ""))


async def list_owned(
    client: KubeClient,
    key: ServiceKey | None = None,
    resources: tuple[Resource, ...] = (SERVICE_ENTRIES, DESTINATION_RULES),
    optional: frozenset[Resource] = frozenset(),
) -> list[dict[str, Any]]:
    """Objects of ``resources`` meshfed owns in a cluster (for one key, or all).

    For one service the read is namespaced and served from the apiserver's watch cache
    (``resourceVersion=0``): a stale answer is safe because applies are server-side applies
    (idempotent) and deletes carry uid/resourceVersion preconditions, and it keeps a
    reconcile from costing a consistent etcd LIST per target. The whole-cluster read (plan,
    clusters) stays consistent. The kinds are listed concurrently: one round trip, not one
    per kind (measured: sequential reads were the largest part of a change's latency that a
    plain apply loop does not pay). The first failure, in ``resources`` order, is raised -
    except a refusal (``PermanentError``) to list a kind in ``optional``, which counts as
    none owned (a policy kind the config does not use and RBAC may not allow)."""
    selector = OWNED_SELECTOR
    namespace: str | None = None
    version: str | None = None
    if key is not None:
        selector += f",{SERVICE_LABEL}={service_label_value(key)}"
        namespace, version = key.namespace, "0"
    listed = await asyncio.gather(
        *(
            client.list(
                resource, namespace=namespace, label_selector=selector, resource_version=version
            )
            for resource in resources
        ),
        return_exceptions=True,
    )
    items: list[dict[str, Any]] = []
    for resource, result in zip(resources, listed, strict=True):
        if isinstance(result, PermanentError) and resource in optional:
            continue
        if isinstance(result, BaseException):
            raise result
        items.extend(result.items)
    return items


async def read_owned(
    index: OwnedIndex | None,
    client: KubeClient,
    key: ServiceKey,
    resources: tuple[Resource, ...],
    optional: frozenset[Resource],
) -> list[Object]:
    """What meshfed owns for ``key`` in a target: from ``index`` when every kind is ready
    there, else listed (``list_owned``). An egress key's objects are always listed (rare;
    they are grouped by namespace, not by service label)."""
    if index is not None and not is_egress_key(key):
        kinds = [r.kind for r in resources]
        cached = index.owned(key.namespace, service_label_value(key), kinds)
        if cached is not None:
            return cached
    return await list_owned(client, key, resources, optional)

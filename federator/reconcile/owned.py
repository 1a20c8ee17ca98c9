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
dropped) - stored compressed (``federator.reconcile.owned_codec``: bodies shared between
targets), grouped by (namespace, ``meshfed.io/service`` label). A key's objects are decoded
only when that key is reconciled.

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
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from federator.core.model import (
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    SERVICE_LABEL,
    ObjectRef,
    ServiceKey,
)
from federator.core.render import service_label_value
from federator.core.render_policy import is_egress_key
from federator.errors import PermanentError
from federator.kube.client import DESTINATION_RULES, SERVICE_ENTRIES, KubeClient, Resource, T
from federator.reconcile.owned_codec import (
    BlobPool,
    Object,
    SharedPool,
    Stamp,
    Uid,
    Version,
    comparable,
    decode,
    encode,
    stamp,
    unstamp,
)

OWNED_SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"
Group = str
"""``namespace/label`` (the ``meshfed.io/service`` label value; "" when the object has none)."""
Ident = str
"""``kind/namespace/name`` (none of the three may contain a slash)."""


class Record(NamedTuple):
    """One owned object as the watches and the reconciler hand it to the index
    (``record_of``); the index keeps it as a ``Held``."""

    ident: Ident
    group: Group
    version: Version
    uid: Uid
    body: bytes


MemberPool = SharedPool[tuple[Ident, ...]]
Held = tuple[Group, Stamp, bytes]
"""How the index holds an object: its group, its version and uid (``stamp``), its body."""


def record_of(obj: Mapping[str, Any]) -> Record:
    """The index's form of an owned object. The owned watches use it as their transform, so
    a relist of thousands of objects is held as records, never as decoded objects (at the
    published shape, holding them decoded cost a restarting federator ~500 MiB)."""
    ident, group = _where(obj)
    version, uid, body = encode(obj)
    return Record(ident, group, version, uid, body)


def _older(new: int | None, held: int | None) -> bool:
    return new is not None and held is not None and new < held


def _group_of(namespace: str, label: str) -> Group:
    return sys.intern(f"{namespace}/{label}")


def _where(obj: Mapping[str, Any]) -> tuple[Ident, Group]:
    meta = obj.get("metadata") or {}
    namespace = str(meta.get("namespace", ""))
    label = str((meta.get("labels") or {}).get(SERVICE_LABEL, ""))
    return _ident(str(obj.get("kind", "")), namespace, str(meta.get("name", ""))), _group_of(
        namespace, label
    )


def _ident(kind: str, namespace: str, name: str) -> Ident:
    # interned: the same object exists in every target cluster (one string, not ten)
    return sys.intern(f"{kind}/{namespace}/{name}")


class OwnedIndex:
    """See the module docstring. One per target cluster; single event loop, no locks.

    Memory is the point (10 targets x 6,000 objects at the published scale): per object a
    (group, stamp, body) triple under its ident (``Held``: version and uid packed into one
    int, the body shared through ``pool`` with the same object in other targets); per group
    the tuple of its idents (pooled too: a group has the same objects in every target);
    group names are interned, so the objects of a group share one string."""

    def __init__(self, pool: BlobPool | None = None, members: MemberPool | None = None) -> None:
        """``pool`` and ``members``: shared with the indexes of the other targets."""
        self._pool = BlobPool() if pool is None else pool
        self._member_pool: MemberPool = SharedPool() if members is None else members
        self._objects: dict[Ident, Held] = {}
        self._members: dict[Group, tuple[Ident, ...]] = {}
        """Group -> the idents of its objects (sorted: kind, then name)."""
        self._tombstones: dict[Ident, int | None] = {}
        """Objects we deleted -> the version we deleted; older events of them are ignored."""
        self._ready: set[str] = set()
        """Kinds listed and currently watched."""

    def __len__(self) -> int:
        return len(self._objects)

    # ---- readiness
    def ready(self, kinds: Iterable[str]) -> bool:
        return all(k in self._ready for k in kinds)

    def disconnected(self, kind: str) -> None:
        """The watch of ``kind`` failed: answer None for it until the next relist."""
        self._ready.discard(kind)

    # ---- the watches
    def replace(self, kind: str, records: Iterable[Record]) -> None:
        """A relist of ``kind``: the complete set (objects gone during a gap disappear)."""
        prefix = f"{kind}/"
        for ident in [i for i in self._objects if i.startswith(prefix)]:
            self._remove(ident)
        self._tombstones = {i: v for i, v in self._tombstones.items() if not i.startswith(prefix)}
        for record in records:
            self._put(record)
        self._ready.add(kind)

    def apply_event(self, event_type: str, record: Record) -> None:
        """One watch event (ADDED, MODIFIED, DELETED)."""
        ident, version = record.ident, comparable(record.version)
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
        self._put(record)

    # ---- our own writes
    def applied(self, obj: Mapping[str, Any]) -> None:
        """The apiserver's response to our apply of ``obj``."""
        record = record_of(obj)
        self._tombstones.pop(record.ident, None)
        if not _older(comparable(record.version), self._held_version(record.ident)):
            self._put(record)

    def deleted(self, kind: str, namespace: str, name: str, resource_version: str) -> None:
        """We deleted the object (its version as we read it; the delete's precondition)."""
        ident = _ident(kind, namespace, name)
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
        members = self._members.get(f"{namespace}/{label}", ())
        return [self._decoded(ident) for ident in members if ident[: ident.index("/")] in kinds]

    def _decoded(self, ident: Ident) -> Object:
        _, packed, body = self._objects[ident]
        return decode(*unstamp(packed), body)

    # ---- internals
    def _held_version(self, ident: Ident) -> int | None:
        held = self._objects.get(ident)
        return None if held is None else comparable(unstamp(held[1])[0])

    def _put(self, record: Record) -> None:
        ident, group = record.ident, record.group
        held = self._objects.get(ident)
        if held is not None and held[0] != group:
            self._remove(ident)
            held = None
        self._objects[ident] = (
            group,
            stamp(record.version, record.uid),
            self._pool.take(record.body),
        )
        if held is not None:
            self._pool.release(held[2])
        else:
            held_members = self._members.get(group, ())
            self._set_members(group, tuple(sorted((*held_members, ident))), held_members)

    def _remove(self, ident: Ident) -> None:
        held = self._objects.pop(ident, None)
        if held is None:
            return
        group, _, body = held
        self._pool.release(body)
        held_members = self._members.get(group, ())
        self._set_members(group, tuple(i for i in held_members if i != ident), held_members)

    def _set_members(
        self, group: Group, members: tuple[Ident, ...], held: tuple[Ident, ...]
    ) -> None:
        if held:
            self._member_pool.release(held)
        if members:
            self._members[group] = self._member_pool.take(members)
        else:
            self._members.pop(group, None)


async def list_owned(
    client: KubeClient,
    key: ServiceKey | None = None,
    resources: tuple[Resource, ...] = (SERVICE_ENTRIES, DESTINATION_RULES),
    optional: frozenset[Resource] = frozenset(),
    transform: Callable[[Object], T] | None = None,
) -> list[T]:
    """Objects of ``resources`` meshfed owns in a cluster (for one key, or all), each
    through ``transform`` as its page is decoded (a whole-cluster read keeps only that).

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
                resource,
                namespace=namespace,
                label_selector=selector,
                resource_version=version,
                transform=transform,
            )
            for resource in resources
        ),
        return_exceptions=True,
    )
    items: list[T] = []
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

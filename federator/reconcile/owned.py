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
from array import array
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
from federator.kube.client import KubeClient, T
from federator.kube.resources import DESTINATION_RULES, SERVICE_ENTRIES, Resource
from federator.reconcile.owned_codec import (
    BlobPool,
    Object,
    SharedPool,
    Uid,
    Version,
    comparable,
    decode,
    encode,
)
from federator.reconcile.owned_slots import IdentSlots

OWNED_SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"
Group = str
"""``namespace/label`` (the ``meshfed.io/service`` label value; "" when the object has none)."""
Ident = str
"""``kind/namespace/name`` (none of the three may contain a slash)."""


class Record(NamedTuple):
    """One owned object as the watches and the reconciler hand it to the index
    (``record_of``)."""

    ident: Ident
    group: Group
    version: Version
    uid: Uid
    body: bytes


MemberPool = SharedPool[tuple[Ident, ...]]


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


_MAX_VERSION = 2**63 - 1
_UID_BYTES = 16
_ODD = -1
"""A version slot holding this has its (version, uid) in ``OwnedIndex._odd``."""


class OwnedIndex:
    """See the module docstring. One per target cluster; single event loop, no locks.

    Memory is the point (10 targets x 6,000 objects at the published scale). An object is
    held in arrays at its ident's shared slot (``IdentSlots``): its body (shared through
    ``pool`` with the same object in other targets), its group, its resourceVersion (an
    int64 array) and its uid (16 bytes of a bytearray): ~40 bytes an object. A version or
    uid that is not the apiserver's usual form (a decimal int64, a canonical UUID) is kept
    aside in ``_odd``. Per group the tuple of its idents (pooled: a group has the same
    objects in every target); group names are interned."""

    def __init__(
        self,
        pool: BlobPool | None = None,
        members: MemberPool | None = None,
        slots: IdentSlots | None = None,
    ) -> None:
        """``pool``, ``members`` and ``slots``: shared with the indexes of the other targets."""
        self._pool = BlobPool() if pool is None else pool
        self._member_pool: MemberPool = SharedPool() if members is None else members
        self._slots = IdentSlots() if slots is None else slots
        self._bodies: list[bytes | None] = []
        """Slot -> the held object's body; None where this target holds no object."""
        self._groups: list[Group | None] = []
        self._versions = array("q")
        self._uids = bytearray()
        self._odd: dict[int, tuple[Version, Uid]] = {}
        self._count = 0
        self._members: dict[Group, tuple[Ident, ...]] = {}
        """Group -> the idents of its objects (sorted: kind, then name)."""
        self._tombstones: dict[Ident, int | None] = {}
        """Objects we deleted -> the version we deleted; older events of them are ignored."""
        self._ready: set[str] = set()
        """Kinds listed and currently watched."""

    def __len__(self) -> int:
        return self._count

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
        held = [
            ident
            for slot, body in enumerate(self._bodies)
            if body is not None and (ident := self._slots[slot]) and ident.startswith(prefix)
        ]
        for ident in held:
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
        slot = self._held_slot(ident)
        body = None if slot is None else self._bodies[slot]
        if slot is None or body is None:
            raise KeyError(ident)
        return decode(*self._stamp(slot), body)

    # ---- internals
    def _held_slot(self, ident: Ident) -> int | None:
        """The slot of ``ident`` if this target holds an object there."""
        slot = self._slots.find(ident)
        if slot is None or slot >= len(self._bodies) or self._bodies[slot] is None:
            return None
        return slot

    def _held_version(self, ident: Ident) -> int | None:
        slot = self._held_slot(ident)
        return None if slot is None else comparable(self._stamp(slot)[0])

    def _stamp(self, slot: int) -> tuple[Version, Uid]:
        version = self._versions[slot]
        if version == _ODD:
            return self._odd[slot]
        at = slot * _UID_BYTES
        return version, int.from_bytes(self._uids[at : at + _UID_BYTES], "big")

    def _set_stamp(self, slot: int, version: Version, uid: Uid) -> None:
        if (
            isinstance(version, int)
            and 0 <= version <= _MAX_VERSION
            and isinstance(uid, int)
            and 0 <= uid < 1 << (8 * _UID_BYTES)
        ):
            self._versions[slot] = version
            at = slot * _UID_BYTES
            self._uids[at : at + _UID_BYTES] = uid.to_bytes(_UID_BYTES, "big")
            self._odd.pop(slot, None)
        else:
            self._versions[slot] = _ODD
            self._odd[slot] = (version, uid)

    def _grow(self, slot: int) -> None:
        missing = slot + 1 - len(self._bodies)
        if missing > 0:
            # to the shared table's size at once: the other targets' slots come next
            missing = max(missing, self._slots.size - len(self._bodies))
            self._bodies.extend([None] * missing)
            self._groups.extend([None] * missing)
            self._versions.extend([0] * missing)
            self._uids.extend(bytes(_UID_BYTES * missing))

    def _put(self, record: Record) -> None:
        ident, group = record.ident, record.group
        slot = self._held_slot(ident)
        if slot is not None and self._groups[slot] != group:
            self._remove(ident)
            slot = None
        if slot is None:
            slot = self._slots.take(ident)
            self._grow(slot)
            self._groups[slot] = group
            self._count += 1
            held_members = self._members.get(group, ())
            self._set_members(group, tuple(sorted((*held_members, ident))), held_members)
            old = None
        else:
            old = self._bodies[slot]
        self._bodies[slot] = self._pool.take(record.body)
        self._set_stamp(slot, record.version, record.uid)
        if old is not None:
            self._pool.release(old)

    def _remove(self, ident: Ident) -> None:
        slot = self._held_slot(ident)
        if slot is None:
            return
        body, group = self._bodies[slot], self._groups[slot]
        if body is not None:
            self._pool.release(body)
        self._bodies[slot] = self._groups[slot] = None
        self._odd.pop(slot, None)
        self._slots.release(slot)
        self._count -= 1
        if group is not None:
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

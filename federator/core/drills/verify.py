"""After rollback: are the live objects what they were before the drill? Pure comparison.

Inputs per target cluster: the pre-drill snapshot (``snapshot_cluster``: the managed view of
every object meshfed owns there, taken before the first step), the objects meshfed wants
there now without any drill overlay (``desired``, from ``render_cluster``) and the live
objects listed after rollback (owned and drill-labelled ones).

A mismatch is an error the report shows:

- ``DrillObjectLeft``: an object labelled with this drill is still there;
- ``Missing`` / ``Differs`` / ``Unexpected``: the reconciler's own ``diff_cluster`` over the
  federated objects is not a no-op - it would create, update or delete something. Using the
  diff itself means verification agrees with reconciliation by construction: fields other
  writers added are ignored, and objects kept by fail-static (a source cluster is down) or
  endpoints carried over from it are not mismatches.

The desired state, not the snapshot, is the reference for federated objects: pods that
became ready during a drill legitimately change the ServiceEntries. Where the snapshot and
the desired state differ, that is reported as ``drift`` (information for the report: the
federation changed during the drill), not as a mismatch.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from federator.core.diff import Op, diff_cluster, managed_view
from federator.core.drills.render import is_drill_object
from federator.core.model import MANAGED_BY_LABEL, MANAGED_BY_VALUE, ClusterId, ObjectRef
from federator.core.render import Manifest, ref_of


class MismatchKind(enum.StrEnum):
    DRILL_OBJECT_LEFT = "DrillObjectLeft"
    MISSING = "Missing"
    DIFFERS = "Differs"
    UNEXPECTED = "Unexpected"


@dataclass(frozen=True, slots=True, order=True)
class Mismatch:
    ref: ObjectRef
    kind: MismatchKind
    detail: str

    def __str__(self) -> str:
        return f"{self.kind.value}: {self.ref}: {self.detail}"


@dataclass(frozen=True, slots=True)
class Verification:
    cluster: ClusterId
    mismatches: tuple[Mismatch, ...]
    drift: tuple[ObjectRef, ...]
    """Federated objects whose desired state changed during the drill (not an error)."""

    @property
    def ok(self) -> bool:
        return not self.mismatches


def _owned(obj: Mapping[str, Any]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return bool(labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE)


def snapshot_cluster(
    cluster: ClusterId, live: Iterable[Manifest], desired: Mapping[ObjectRef, Manifest]
) -> dict[ObjectRef, Any]:
    """The managed view of every federated (owned, not drill) object in ``cluster``, read the
    way ``diff`` reads it against the desired state of the moment (``desired``)."""
    out = {}
    for obj in live:
        if _owned(obj) and not is_drill_object(obj):
            ref = ref_of(obj, cluster)
            out[ref] = managed_view(obj, desired.get(ref))
    return out


def verify_cluster(
    cluster: ClusterId,
    *,
    drill: str,
    snapshot: Mapping[ObjectRef, Any] | None,
    desired: Mapping[ObjectRef, Manifest],
    live: Iterable[Manifest],
    members: Mapping[ClusterId, bool],
) -> Verification:
    """Compare the live objects of ``cluster`` after rolling back ``drill`` (module docstring).

    ``members``: every configured cluster -> synced and healthy, as for ``diff_cluster``; the
    federated objects are verified by asking the reconciler's own diff for a no-op.
    ``snapshot`` None (lost with a crashed leader): the same verdict, no drift.
    """
    objects = list(live)
    mismatches = [
        Mismatch(ref_of(obj, cluster), MismatchKind.DRILL_OBJECT_LEFT, "still present")
        for obj in objects
        if is_drill_object(obj, drill)
    ]
    federated = [obj for obj in objects if not is_drill_object(obj)]
    plan = diff_cluster(cluster=cluster, desired=desired, actual=federated, members=members)
    mismatches.extend(
        Mismatch(action.ref, _KIND_OF_OP[action.op], action.reason)
        for action in plan.actions
        if action.op in _KIND_OF_OP
    )
    if snapshot is None:
        return Verification(cluster, tuple(sorted(mismatches)), ())
    drift = tuple(
        sorted(
            ref
            for ref in set(snapshot) | set(desired)
            if ref not in desired
            or ref not in snapshot
            or snapshot[ref] != managed_view(desired[ref], None)
        )
    )
    return Verification(cluster, tuple(sorted(mismatches)), drift)


VERIFIED = "rollback verified"
DRIFT_LISTED = 10
"""Drifted objects named in the message (the journal bounds messages); the rest are counted."""


def verified_message(results: Iterable[Verification], *, snapshot: bool) -> str:
    """The ``Verified`` event's message over every target: the mismatches (an error), else
    ``rollback verified; drift: ...`` naming what changed during the drill (``drift_of``
    reads it back for the report). Without a ``snapshot`` (a new leader) drift is unknown."""
    done = list(results)
    mismatches = [str(m) for r in done for m in r.mismatches]
    if mismatches:
        return "; ".join(mismatches)
    if not snapshot:
        return f"{VERIFIED}; drift: unknown (no pre-drill snapshot: the leader changed)"
    drift = sorted(str(ref) for r in done for ref in r.drift)
    if not drift:
        return f"{VERIFIED}; drift: none"
    more = len(drift) - DRIFT_LISTED
    named = ", ".join(drift[:DRIFT_LISTED]) + (f" and {more} more" if more > 0 else "")
    return f"{VERIFIED}; drift: {len(drift)} object(s): {named}"


def drift_of(message: str) -> str:
    """What a ``verified_message`` says about drift ("none", "unknown (...)", "2 object(s):
    ..."); "" for any other message (a mismatch, an older controller's wording)."""
    prefix = f"{VERIFIED}; drift: "
    return message[len(prefix) :] if message.startswith(prefix) else ""


_KIND_OF_OP = {
    Op.CREATE: MismatchKind.MISSING,
    Op.UPDATE: MismatchKind.DIFFERS,
    Op.DELETE: MismatchKind.UNEXPECTED,
}

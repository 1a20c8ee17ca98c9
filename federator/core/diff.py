"""Desired manifests vs the owned objects in one target cluster -> a Plan. Pure.

Inputs: the rendered manifests for a target (``render.render_cluster``), the objects labelled
``app.kubernetes.io/managed-by: meshfed`` listed from that target (as the apiserver returns
them: with resourceVersion, managedFields, status...), and ``members``: every configured
cluster -> whether its watches are synced and healthy. The caller diffs a target only when
its own list of owned objects is fresh; objects without the managed-by label are ignored, so
nothing meshfed does not own is ever updated or deleted.

Rules, per object (identity = kind/namespace/name):

1. **Create** what is desired and absent.
2. **No change** when the fields meshfed sets already match. Only those fields are compared:
   ``spec``, and the labels/annotations meshfed writes. If the object has a ``managedFields``
   entry of field manager ``meshfed`` (operation Apply), the actual object is first projected
   onto exactly the fields that entry owns - so fields other writers added (kept by
   server-side apply) never cause a write, while fields meshfed set earlier and no longer
   wants do (the apply removes them). Without that entry the whole ``spec`` is compared.
   Both sides are normalised (``None``, ``{}`` and ``[]`` values dropped) so apiserver
   round-trips do not look like changes. A resync over an unchanged world writes nothing.
3. **Update** otherwise; the reason lists what differs.
4. **Fail-static carry-over.** If the existing object lists (annotation
   ``meshfed.io/source-clusters``) a source cluster the desired object lacks, and that
   cluster is a member that is *not* synced and healthy, its contribution is kept: the
   ServiceEntry endpoints labelled ``topology.istio.io/cluster: <it>`` are copied into the
   desired object and it stays in the annotation. This is what keeps a remote's endpoints
   after a federator restart while that remote is down (its view is then empty).
5. **Delete** an owned object that is not desired only if every source cluster in its
   annotation is synced and healthy, or no longer a member (removed from the config on
   purpose). Otherwise it is **kept** (prune suppressed) and the plan says which cluster
   blocks it. An object without a readable annotation can be deleted only when every member
   is synced and healthy; one whose annotation lists no cluster (the egress objects, made
   from the config alone) has nothing to wait for.
"""

from __future__ import annotations

import copy
import difflib
import enum
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from federator.core.model import (
    FIELD_MANAGER,
    ISTIO_CLUSTER_LABEL,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    SOURCES_ANNOTATION,
    ClusterId,
    ObjectRef,
)
from federator.core.render import SERVICE_ENTRY, Manifest, is_ip, ref_of


class Op(enum.StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    KEEP = "keep"
    """Not desired, but pruning is suppressed by fail-static."""


@dataclass(frozen=True, slots=True)
class Action:
    """One thing to do (or deliberately not do) to one object."""

    ref: ObjectRef
    op: Op
    reason: str
    desired: Manifest | None = None
    """The manifest to apply (create/update); None for delete/keep."""
    actual: Manifest | None = None
    """The object as read from the apiserver (update/delete/keep)."""


@dataclass(frozen=True, slots=True)
class ClusterPlan:
    cluster: ClusterId
    actions: tuple[Action, ...] = ()
    """Sorted by object ref."""
    unchanged: int = 0
    """Desired objects that already match (no write)."""

    @property
    def applies(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.op in (Op.CREATE, Op.UPDATE))

    @property
    def deletes(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.op is Op.DELETE)

    @property
    def kept(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.op is Op.KEEP)


@dataclass(frozen=True, slots=True)
class Plan:
    clusters: tuple[ClusterPlan, ...] = field(default_factory=tuple)

    @property
    def is_noop(self) -> bool:
        """True when nothing would be written or deleted anywhere."""
        return not any(cp.applies or cp.deletes for cp in self.clusters)

    def render_text(self) -> str:
        """A kubectl-diff-like description, for ``meshfed plan``."""
        out: list[str] = []
        for cp in sorted(self.clusters, key=lambda c: c.cluster):
            counts = {op: sum(1 for a in cp.actions if a.op is op) for op in Op}
            out.append(
                f"cluster {cp.cluster}: {counts[Op.CREATE]} to create, {counts[Op.UPDATE]} to "
                f"update, {counts[Op.DELETE]} to delete, {counts[Op.KEEP]} kept by fail-static, "
                f"{cp.unchanged} unchanged"
            )
            for action in cp.actions:
                out.extend(_action_text(action))
        return "\n".join(out) + "\n"


_SIGN = {Op.CREATE: "+", Op.UPDATE: "~", Op.DELETE: "-", Op.KEEP: "!"}


def _action_text(action: Action) -> list[str]:
    ref = action.ref
    head = f"{_SIGN[action.op]} {action.op.value} {ref.kind} {ref.namespace}/{ref.name}"
    lines = [f"{head} ({action.reason})"]
    before = _yaml(managed_view(action.actual, action.desired)) if action.actual else []
    after = _yaml(managed_view(action.desired, None)) if action.desired else []
    if action.op is Op.KEEP:
        return lines
    name = f"{ref.cluster}/{ref.kind}/{ref.namespace}/{ref.name}"
    diff = difflib.unified_diff(before, after, f"live {name}", f"desired {name}", lineterm="")
    lines.extend("    " + line for line in diff)
    return lines


def _yaml(value: Any) -> list[str]:
    return yaml.safe_dump(value, sort_keys=True, default_flow_style=False).splitlines()


def parse_sources(manifest: Mapping[str, Any]) -> tuple[ClusterId, ...] | None:
    """The source clusters an object was built from, or None if the annotation is missing."""
    raw = ((manifest.get("metadata") or {}).get("annotations") or {}).get(SOURCES_ANNOTATION)
    if not isinstance(raw, str):
        return None
    return tuple(ClusterId(s.strip()) for s in raw.split(",") if s.strip())


def normalize(value: Any) -> Any:
    """Drop None, empty maps and empty lists, recursively (they mean 'unset' in the API)."""
    if isinstance(value, Mapping):
        out = {k: normalize(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [normalize(v) for v in value]
    return value


def owned_fields(actual: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The fieldsV1 set meshfed's server-side apply owns on ``actual``, if recorded."""
    for entry in (actual.get("metadata") or {}).get("managedFields") or []:
        if (
            entry.get("manager") == FIELD_MANAGER
            and entry.get("operation") == "Apply"
            and entry.get("fieldsType", "FieldsV1") == "FieldsV1"
        ):
            fields = entry.get("fieldsV1")
            return fields if isinstance(fields, Mapping) else {}
    return None


def project(value: Any, fields: Mapping[str, Any]) -> Any:
    """``value`` restricted to a fieldsV1 set (``f:`` fields, ``k:``/``v:``/``i:`` items)."""
    children = {k: v for k, v in fields.items() if k != "."}
    if not children:
        return value  # a leaf, or a whole atomic map/list
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, sub in children.items():
            if key.startswith("f:") and key[2:] in value:
                out[key[2:]] = project(value[key[2:]], sub)
        return out
    if isinstance(value, list):
        items: list[Any] = []
        for i, item in enumerate(value):
            for key, sub in children.items():
                if _item_matches(key, i, item):
                    items.append(project(item, sub))
                    break
        return items
    return value


def _item_matches(key: str, index: int, item: Any) -> bool:
    kind, _, raw = key.partition(":")
    if kind == "i":
        return raw == str(index)
    try:
        wanted = json.loads(raw)
    except ValueError:
        return False
    if kind == "v":
        return bool(item == wanted)
    if kind == "k" and isinstance(wanted, dict) and isinstance(item, Mapping):
        return all(item.get(k) == v for k, v in wanted.items())
    return False


def managed_view(manifest: Mapping[str, Any] | None, desired: Mapping[str, Any] | None) -> Any:
    """The part of ``manifest`` meshfed manages, normalised, for comparison and display.

    For a desired manifest (``desired`` is None) that is its labels, annotations and spec. For
    an actual object, ``desired`` says which label/annotation keys meshfed sets; the object is
    first projected onto meshfed's managedFields when it has them.
    """
    if manifest is None:
        return None
    meta = manifest.get("metadata") or {}
    if desired is None:
        return normalize(
            {
                "labels": meta.get("labels"),
                "annotations": meta.get("annotations"),
                "spec": manifest.get("spec"),
            }
        )
    fields = owned_fields(manifest)
    want_meta = desired.get("metadata") or {}
    labels = _pick(meta.get("labels"), want_meta.get("labels"))
    annotations = _pick(meta.get("annotations"), want_meta.get("annotations"))
    spec = manifest.get("spec")
    if fields is not None:
        projected = project(dict(manifest), fields)
        pmeta = projected.get("metadata") or {}
        labels = {**labels, **(pmeta.get("labels") or {})}
        annotations = {**annotations, **(pmeta.get("annotations") or {})}
        spec = projected.get("spec")
    return normalize({"labels": labels, "annotations": annotations, "spec": spec})


def _pick(actual: Mapping[str, Any] | None, wanted: Mapping[str, Any] | None) -> dict[str, Any]:
    actual = actual or {}
    return {k: actual[k] for k in (wanted or {}) if k in actual}


def _changes(before: Any, after: Any) -> list[str]:
    changed = []
    for section in ("labels", "annotations", "spec"):
        b, a = (before or {}).get(section) or {}, (after or {}).get(section) or {}
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                changed.append(f"{section}.{key}")
    return changed


def carry_over(
    desired: Manifest, actual: Mapping[str, Any], members: Mapping[ClusterId, bool]
) -> Manifest:
    """Rule 4: keep what untrusted source clusters contributed to ``actual``."""
    have = set(parse_sources(desired) or ())
    stale = sorted(
        s for s in (parse_sources(actual) or ()) if s not in have and members.get(s) is False
    )
    if not stale:
        return desired
    merged = copy.deepcopy(desired)
    merged["metadata"]["annotations"][SOURCES_ANNOTATION] = ",".join(sorted(have | set(stale)))
    if merged["kind"] == SERVICE_ENTRY:
        kept = [
            copy.deepcopy(ep)
            for ep in (actual.get("spec") or {}).get("endpoints") or []
            if (ep.get("labels") or {}).get(ISTIO_CLUSTER_LABEL) in stale
        ]
        spec = merged["spec"]
        endpoints = spec.get("endpoints", []) + kept
        endpoints.sort(
            key=lambda e: ((e.get("labels") or {}).get(ISTIO_CLUSTER_LABEL, ""), e["address"])
        )
        if endpoints:
            spec["endpoints"] = endpoints
        dns = any(not is_ip(e["address"]) for e in endpoints)
        spec["resolution"] = "DNS" if dns else "STATIC"
    return merged


def _is_owned(obj: Mapping[str, Any]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return bool(labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE)


def _prune_blockers(
    actual: Mapping[str, Any], members: Mapping[ClusterId, bool]
) -> tuple[list[ClusterId], str]:
    sources = parse_sources(actual)
    if sources is None:
        blockers = sorted(c for c, ok in members.items() if not ok)
        return blockers, "no source annotation, so every member must be synced and healthy"
    basis = f"sources {','.join(sources)}" if sources else "made from the config alone"
    return sorted(s for s in sources if members.get(s) is False), basis


def diff_cluster(
    *,
    cluster: ClusterId,
    desired: Mapping[ObjectRef, Manifest],
    actual: Iterable[Mapping[str, Any]],
    members: Mapping[ClusterId, bool],
) -> ClusterPlan:
    """The plan for one target cluster (see the module docstring for the rules)."""
    live = {ref_of(dict(obj), cluster): obj for obj in actual if _is_owned(obj)}
    actions: list[Action] = []
    unchanged = 0
    for ref in sorted(set(desired) | set(live)):
        want, have = desired.get(ref), live.get(ref)
        if want is not None and have is None:
            actions.append(Action(ref, Op.CREATE, "desired and absent", desired=want))
        elif want is not None and have is not None:
            merged = carry_over(want, have, members)
            changes = _changes(managed_view(have, merged), managed_view(merged, None))
            if not changes:
                unchanged += 1
                continue
            reason = "changed: " + ", ".join(changes)
            if merged is not want:
                reason += "; kept endpoints of unsynced sources (fail-static)"
            actions.append(Action(ref, Op.UPDATE, reason, desired=merged, actual=dict(have)))
        elif have is not None:
            blockers, basis = _prune_blockers(have, members)
            if blockers:
                reason = (
                    f"not desired, but prune suppressed: {', '.join(blockers)} not synced "
                    f"and healthy ({basis}; fail-static)"
                )
                actions.append(Action(ref, Op.KEEP, reason, actual=dict(have)))
            else:
                reason = f"no longer desired ({basis}, all synced and healthy)"
                actions.append(Action(ref, Op.DELETE, reason, actual=dict(have)))
    return ClusterPlan(cluster=cluster, actions=tuple(actions), unchanged=unchanged)

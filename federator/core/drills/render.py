"""A drill step -> the Istio objects it needs in one target cluster. Pure, deterministic.

Per (service, target) a step other than ``drain`` renders one ``VirtualService``
(``networking.istio.io/v1``) for the global host ``<name>.<ns>.svc.<suffix>``:

- ``delay`` / ``abort``: one ``http`` route with ``fault`` (``percentage.value``,
  ``fixedDelay`` / ``httpStatus``) to the host; with headers, that route matches them and a
  second, unmatched route sends every other request to the host unchanged;
- ``shift``: one route with weighted destinations, one per subset;
- ``route``: a header-matched route to the subset, then the default route.

Objects are named ``meshfed-drill-<drill>-<hash of namespace/name>``, labelled
``meshfed.io/drill: <drill>`` and ``app.kubernetes.io/managed-by: meshfed`` (found and pruned
by label), annotated with the drill's generation and step, and applied with their own field
manager ``meshfed-drill``.

Subsets are not a second DestinationRule: Istio uses one DestinationRule per host, and the
federator already writes one (mTLS ``ISTIO_MUTUAL``, outlier detection, locality failover).
A drill DR would replace it and silently drop those. Instead ``with_drill_subsets`` adds the
drill's subsets to the federated DR, through the desired state, for the whole drill (so a
``10 -> 50 -> 100`` canary does not churn the DR between steps); rollback renders it without.
The controller applies the DR before the first VirtualService that names a subset, and
removes the VirtualServices before the subsets (a route to an unknown subset is a 503).
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

from federator.core.drills.spec import (
    Abort,
    Delay,
    DrillSpec,
    HeaderMatch,
    Route,
    Shift,
    Step,
    SubsetRef,
)
from federator.core.model import (
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    SERVICE_ANNOTATION,
    SERVICE_LABEL,
    ClusterId,
    ObjectRef,
    ServiceKey,
)
from federator.core.render import API_VERSION, DESTINATION_RULE, Manifest, service_label_value

VIRTUAL_SERVICE = "VirtualService"
DRILL_FIELD_MANAGER = "meshfed-drill"
"""Server-side-apply field manager of every drill object (the federated objects keep
``meshfed``)."""
DRILL_LABEL = "meshfed.io/drill"
"""Label on every drill object: the drill's name (list and prune by it)."""
GENERATION_ANNOTATION = "meshfed.io/drill-generation"
STEP_ANNOTATION = "meshfed.io/drill-step"
SUBSETS_ANNOTATION = "meshfed.io/drill-subsets"
"""On a federated DestinationRule carrying a drill's subsets: the drill's name."""
NAME_PREFIX = "meshfed-drill-"


def virtual_service_name(drill: str, key: ServiceKey) -> str:
    """``meshfed-drill-<drill>-<8 hex of sha256(namespace/name)>``: unique per drill and
    service, short enough for any drill name the parser accepts."""
    digest = hashlib.sha256(str(key).encode()).hexdigest()[:8]
    return f"{NAME_PREFIX}{drill}-{digest}"


def _match(headers: tuple[HeaderMatch, ...]) -> list[dict[str, Any]]:
    return [{"headers": {h.name: {h.kind.value: h.value} for h in headers}}]


def _to(host: str, subset: SubsetRef | None = None, weight: int | None = None) -> dict[str, Any]:
    destination: dict[str, Any] = {"host": host}
    if subset is not None:
        destination["subset"] = subset.name
    out: dict[str, Any] = {"destination": destination}
    if weight is not None:
        out["weight"] = weight
    return out


def _fault(action: Delay | Abort) -> dict[str, Any]:
    percentage = {"value": action.percentage}
    if isinstance(action, Delay):
        return {"delay": {"percentage": percentage, "fixedDelay": action.fixed_delay}}
    return {"abort": {"percentage": percentage, "httpStatus": action.http_status}}


def http_routes(step: Step, host: str) -> list[dict[str, Any]]:
    """The VirtualService ``http`` list of ``step`` for ``host``; empty for a drain."""
    action = step.action
    default = {"name": "default", "route": [_to(host)]}
    if isinstance(action, Delay | Abort):
        faulty: dict[str, Any] = {"name": step.name, "fault": _fault(action), "route": [_to(host)]}
        if not action.headers:
            return [faulty]
        return [{"name": step.name, "match": _match(action.headers), **faulty}, default]
    if isinstance(action, Shift):
        route = [_to(host, d.subset, d.weight) for d in action.destinations]
        return [{"name": step.name, "route": route}]
    if isinstance(action, Route):
        matched = {
            "name": step.name,
            "match": _match(action.headers),
            "route": [_to(host, action.subset)],
        }
        return [matched, default]
    return []


def virtual_service(
    spec: DrillSpec, step_index: int, key: ServiceKey, *, host: str
) -> Manifest | None:
    """The VirtualService of step ``step_index`` for service ``key`` (None for a drain)."""
    step = spec.steps[step_index]
    http = http_routes(step, host)
    if not http:
        return None
    return {
        "apiVersion": API_VERSION,
        "kind": VIRTUAL_SERVICE,
        "metadata": {
            "name": virtual_service_name(spec.name, key),
            "namespace": key.namespace,
            "labels": {
                MANAGED_BY_LABEL: MANAGED_BY_VALUE,
                DRILL_LABEL: spec.name,
                SERVICE_LABEL: service_label_value(key),
            },
            "annotations": {
                SERVICE_ANNOTATION: str(key),
                GENERATION_ANNOTATION: str(spec.generation),
                STEP_ANNOTATION: step.name,
            },
        },
        "spec": {"hosts": [host], "http": http},
    }


def render_step(
    spec: DrillSpec, step_index: int, *, target: ClusterId, hosts: dict[ServiceKey, str]
) -> dict[ObjectRef, Manifest]:
    """The drill objects step ``step_index`` wants in ``target``, sorted by ref.

    ``hosts`` maps each drill service to its global host (``desired.host_for``); services
    without a host (not currently a global service) get nothing.
    """
    step = spec.steps[step_index]
    out: dict[ObjectRef, Manifest] = {}
    for key in spec.step_services(step):
        host = hosts.get(key)
        manifest = virtual_service(spec, step_index, key, host=host) if host else None
        if manifest is not None:
            meta = manifest["metadata"]
            ref = ObjectRef(target, VIRTUAL_SERVICE, meta["namespace"], meta["name"])
            out[ref] = manifest
    return {ref: out[ref] for ref in sorted(out)}


def subset_manifest(subset: SubsetRef) -> dict[str, Any]:
    key, value = subset.label
    return {"name": subset.name, "labels": {key: value}}


def with_drill_subsets(destination_rule: Manifest, spec: DrillSpec, key: ServiceKey) -> Manifest:
    """The federated DestinationRule of ``key`` with the drill's subsets added (the render hook
    the reactor applies while the drill runs). Unchanged (same object) if it needs none."""
    subsets = spec.subsets(key)
    if not subsets or destination_rule.get("kind") != DESTINATION_RULE:
        return destination_rule
    out = copy.deepcopy(destination_rule)
    out["metadata"].setdefault("annotations", {})[SUBSETS_ANNOTATION] = spec.name
    out["spec"]["subsets"] = [subset_manifest(s) for s in subsets]
    return out


def is_drill_object(manifest: Manifest, drill: str | None = None) -> bool:
    """Whether ``manifest`` carries the drill label (of ``drill``, if given)."""
    labels = (manifest.get("metadata") or {}).get("labels") or {}
    value = labels.get(DRILL_LABEL)
    return value is not None and (drill is None or value == drill)

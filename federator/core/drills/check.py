"""A parsed drill against the live federation: do its services, clusters and regions exist?

Separate from ``parse`` because it needs the current desired state (admission can parse a
Drill without it; ``plan`` and the controller check both). Every problem names its field,
like the parser's errors, and all of them are returned at once.
"""

from __future__ import annotations

from collections.abc import Mapping

from federator.core.drills.spec import Drain, DrillSpec, Route, Shift
from federator.core.model import ClusterId, ServiceKey
from federator.errors import DrillSpecError


def check_against(
    spec: DrillSpec,
    known_services: frozenset[ServiceKey],
    clusters_by_region: Mapping[str, tuple[ClusterId, ...]],
) -> tuple[DrillSpecError, ...]:
    """What the spec names that the federation does not have: unknown global services,
    clusters and regions, each naming its field. Empty: the spec fits the federation."""
    clusters = {c for cs in clusters_by_region.values() for c in cs}
    errors: list[DrillSpecError] = []

    def cluster(value: ClusterId | None, path: str) -> None:
        if value is not None and value not in clusters:
            known = ", ".join(sorted(clusters)) or "(none)"
            errors.append(DrillSpecError(path, f'unknown cluster "{value}"; known: {known}'))

    def regions(values: tuple[str, ...], path: str) -> None:
        for i, region in enumerate(values):
            if region not in clusters_by_region:
                known = ", ".join(sorted(clusters_by_region)) or "(none)"
                errors.append(
                    DrillSpecError(f"{path}[{i}]", f'unknown region "{region}"; known: {known}')
                )

    for i, key in enumerate(spec.services):
        if key not in known_services:
            errors.append(DrillSpecError(f"spec.services[{i}]", f"{key} is not a global service"))
    for i, c in enumerate(spec.scope.clusters):
        cluster(c, f"spec.scope.clusters[{i}]")
    regions(spec.scope.regions, "spec.scope.regions")
    for s, step in enumerate(spec.steps):
        where = f"spec.steps[{s}].{step.kind}"
        action = step.action
        if isinstance(action, Drain):
            for i, c in enumerate(action.clusters):
                cluster(c, f"{where}.clusters[{i}]")
            regions(action.regions, f"{where}.regions")
        elif isinstance(action, Shift):
            for i, d in enumerate(action.destinations):
                cluster(d.subset.cluster, f"{where}.destinations[{i}].cluster")
        elif isinstance(action, Route):
            cluster(action.subset.cluster, f"{where}.cluster")
    return tuple(errors)

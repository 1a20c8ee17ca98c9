"""What one reconcile did, folded for the controller and the status: ``Result`` and ``Tally``.

``Result`` is all the controller sees of a reconcile (facts, not instructions); ``Tally``
folds the targets' ``ApplyOutcome`` into it and into the status conditions, including the
refusals (S6): every request a target refused for good becomes a ``RefusalCondition``
(``Forbidden`` for RBAC, ``Refused`` otherwise), kept until that target is written again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from federator.core.model import ClusterId, ObjectRef, ServiceKey
from federator.errors import FederatorError, PermanentError, RetryableError
from federator.kube.resources import Resource
from federator.reconcile.apply import ApplyOutcome, Refusal
from federator.reconcile.policy import listed_kinds
from federator.status import (
    FORBIDDEN,
    REFUSED,
    RefusalCondition,
    ServiceCondition,
    ServiceStatus,
)


@dataclass(frozen=True, slots=True)
class Result:
    """How one reconcile went, over all targets: facts for the controller, not instructions.

    ``Result()`` is a full success."""

    retryable: RetryableError | None = None
    """The first transient failure (some target was not fully written)."""
    refused: PermanentError | None = None
    """The first request a target refused for good."""
    forbidden: bool = False
    """Some refusal was RBAC's (403): it may be fixed any time, unlike an invalid object."""
    retry_after: float = 0.0
    """The largest Retry-After a server asked for."""


def refusal_condition(key: ServiceKey, refusal: Refusal) -> RefusalCondition:
    """The status condition reporting ``refusal`` on ``key`` (pure)."""
    ref = refusal.ref
    return RefusalCondition(
        key=key,
        cluster=ref.cluster,
        reason=FORBIDDEN if refusal.forbidden else REFUSED,
        verb=refusal.verb,
        kind=ref.kind,
        name=f"{ref.namespace}/{ref.name}" if ref.name else ref.namespace,
        message=refusal.message,
    )


def carried_refusals(old: ServiceStatus | None, settled: set[ClusterId]) -> list[RefusalCondition]:
    """The refusals of the last status in targets this reconcile did not settle (pure)."""
    if old is None:
        return []
    return [
        c for c in old.conditions if isinstance(c, RefusalCondition) and c.cluster not in settled
    ]


@dataclass(slots=True)
class Tally:
    """The targets' outcomes of one reconcile, folded into what decides status and requeue."""

    key: ServiceKey
    conditions: list[ServiceCondition] = field(default_factory=list)
    last_applied: dict[ClusterId, datetime] = field(default_factory=dict)
    last_propagation: dict[ClusterId, float] = field(default_factory=dict)
    """Per target: seconds from the observed change to the latest write that followed it."""
    retryable: RetryableError | None = None
    permanent: PermanentError | None = None
    retry_after: float = 0.0
    denied: bool = False
    """Some target answered 403 Forbidden."""
    settled: set[ClusterId] = field(default_factory=set)
    """Targets whose earlier refusals this reconcile replaces: it got refusals there, or every
    request there succeeded. A target that only failed transiently keeps its old ones."""

    def result(self) -> Result:
        """What the controller is told of the whole reconcile."""
        return Result(
            retryable=self.retryable,
            refused=self.permanent,
            forbidden=self.denied,
            retry_after=self.retry_after,
        )

    def add(self, target: ClusterId, outcome: ApplyOutcome, propagation: float | None) -> None:
        """``propagation``: seconds from the observed change to this target's write (None
        when nothing was written after an observed change)."""
        if outcome.written:
            self.last_applied[target] = datetime.now(UTC)
        if propagation is not None:
            self.last_propagation[target] = propagation
        self.conditions.extend(refusal_condition(self.key, r) for r in outcome.refused)
        self.denied = self.denied or any(r.forbidden for r in outcome.refused)
        if outcome.refused or outcome.retryable is None:
            self.settled.add(target)
        self.retryable = self.retryable or outcome.retryable
        self.permanent = self.permanent or outcome.permanent
        self.retry_after = max(self.retry_after, outcome.retry_after)


def condition_order(condition: ServiceCondition) -> tuple[str, str, str]:
    return (condition.cluster, str(condition.reason), condition.message)


def list_failed(
    target: ClusterId, key: ServiceKey, resources: tuple[Resource, ...], exc: FederatorError
) -> ApplyOutcome:
    """The outcome of a target whose owned objects could not be listed."""
    if isinstance(exc, PermanentError):
        ref = ObjectRef(target, listed_kinds(resources), key.namespace, "")
        return ApplyOutcome(refused=[Refusal.of(ref, "list", exc)], permanent=exc)
    if isinstance(exc, RetryableError):
        return ApplyOutcome(retryable=exc, retry_after=exc.retry_after)
    raise exc

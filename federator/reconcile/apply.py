"""Execute one target cluster's ``ClusterPlan``: server-side apply and guarded deletes.

Creates and updates are server-side applies of the full desired manifest (field manager
``meshfed``), so the result is the same whether the object exists or not and fields other
writers own are kept. Deletes carry the uid and resourceVersion read during the diff as
preconditions: an object someone changed after the diff is not deleted (409, retried with a
fresh read). ``KEEP`` actions (fail-static) are never executed.

The actions touch independent objects and run concurrently (a service's ServiceEntry and
DestinationRule cost one round trip, not two); the outcome lists them in plan order. Every
action is attempted even if another one failed; the outcome reports what was done,
every action that failed (so the caller keeps tracking objects whose prune did not happen),
each refusal with the RBAC verb and the apiserver's message (the caller turns them into
status conditions: S6, a denied verb must be visible, not only logged), and the first
retryable and permanent failures; the caller decides about the requeue. Each apply's response
goes to ``on_applied`` as soon as it is decoded, and the deleted versions are in the outcome,
so the caller's index of owned objects sees its own writes at once
(``federator.reconcile.owned``). Why a callback and not a list of responses: a response is
the whole object with its managedFields (hundreds of small dicts and strings); kept until
every target of a reconcile had answered, the responses of the concurrent reconciles were
~30,000 objects alive at once during convergence, whose freed memory Python's allocator
keeps (docs/federator.md, Memory).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from federator.core.diff import Action, ClusterPlan, Op
from federator.core.model import ObjectRef
from federator.errors import PermanentError, RetryableError
from federator.kube.client import KubeClient
from federator.kube.resources import WRITTEN

FORBIDDEN_STATUS = 403
VERBS = {Op.CREATE: "patch", Op.UPDATE: "patch", Op.DELETE: "delete"}
"""The RBAC verb each executed op needs (server-side apply is a PATCH)."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """One request a target's apiserver refused for good (a ``PermanentError``)."""

    ref: ObjectRef
    """The object (for a refused list: its kind and namespace, and an empty name)."""
    verb: str
    """The RBAC verb: ``patch`` (server-side apply), ``delete`` or ``list``."""
    status: int | None
    """The HTTP status, if the apiserver answered (403: RBAC denies the verb)."""
    message: str
    """The error text, which carries the apiserver's message."""

    @property
    def forbidden(self) -> bool:
        return self.status == FORBIDDEN_STATUS

    @classmethod
    def of(cls, ref: ObjectRef, verb: str, exc: PermanentError) -> Refusal:
        return cls(ref=ref, verb=verb, status=exc.status, message=str(exc))


@dataclass(slots=True)
class ApplyOutcome:
    """What executing one plan did."""

    written: list[tuple[ObjectRef, Op]] = field(default_factory=list)
    """Creates, updates and deletes that succeeded (a delete of an already-gone object too)."""
    failed: list[tuple[ObjectRef, Op]] = field(default_factory=list)
    """Actions that did not happen (any failure); a failed delete leaves an object to track."""
    refused: list[Refusal] = field(default_factory=list)
    """The failed actions the apiserver refused for good, in plan order."""
    retryable: RetryableError | None = None
    """The first transient failure; the key should be requeued with backoff."""
    permanent: PermanentError | None = None
    """The first refusal (invalid object, forbidden); reported, not hot-retried."""
    retry_after: float = 0.0
    """The largest server Retry-After seen."""
    deleted: list[tuple[ObjectRef, str]] = field(default_factory=list)
    """The deletes that succeeded (or found the object gone), with the version deleted."""


OnApplied = Callable[[dict[str, Any]], object]
"""Takes the apiserver's response to an apply (the object as now stored)."""


async def _run(action: Action, client: KubeClient, on_applied: OnApplied | None) -> bool | str:
    """Carry out one action: True for an apply (its response handed to ``on_applied``), the
    deleted version for a delete, False for a KEEP."""
    if action.op in (Op.CREATE, Op.UPDATE) and action.desired is not None:
        response = await client.apply(action.desired)
        if on_applied is not None:
            on_applied(response)
        return True
    if action.op is Op.DELETE and action.actual is not None:
        meta = action.actual.get("metadata") or {}
        version = str(meta.get("resourceVersion", ""))
        await client.delete(
            WRITTEN[action.ref.kind],
            action.ref.namespace,
            action.ref.name,
            uid=str(meta.get("uid", "")),
            resource_version=version,
        )
        return version
    return False


async def execute(
    plan: ClusterPlan, *, client: KubeClient, on_applied: OnApplied | None = None
) -> ApplyOutcome:
    """Apply ``plan`` in its cluster through ``client`` (see the module docstring)."""
    out = ApplyOutcome()
    results = await asyncio.gather(
        *(_run(action, client, on_applied) for action in plan.actions), return_exceptions=True
    )
    for action, result in zip(plan.actions, results, strict=True):
        if isinstance(result, RetryableError):
            out.failed.append((action.ref, action.op))
            out.retryable = out.retryable or result
            out.retry_after = max(out.retry_after, result.retry_after)
        elif isinstance(result, PermanentError):
            out.failed.append((action.ref, action.op))
            out.refused.append(Refusal.of(action.ref, VERBS[action.op], result))
            out.permanent = out.permanent or result
        elif isinstance(result, BaseException):
            raise result  # a bug (or a cancellation): the controller's crash path
        elif result is True:
            out.written.append((action.ref, action.op))
        elif isinstance(result, str):
            out.written.append((action.ref, action.op))
            out.deleted.append((action.ref, result))
    return out

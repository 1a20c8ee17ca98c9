"""The federator's exception tree: every exception class the federator defines is here.

One place to read, because the class of a failure decides what happens next, in every layer
(the reconciler's requeue, the status API's gRPC code, the CLI's exit code)::

    FederatorError                    anything the federator raises on purpose
    ├── RetryableError                transient: requeue with jittered backoff; gRPC UNAVAILABLE
    │   │                             .retry_after: the server's Retry-After (0: none)
    │   ├── ApiRetryableError         an apiserver unreachable, timing out, 409, 429, 5xx
    │   │                             .status: the HTTP status (None: no answer)
    │   ├── ExpiredError              410 Gone: the watch's resourceVersion is too old; relist
    │   └── NotLeaderError            a write refused by the fence: this replica does not hold
    │                                 the Lease (or has not renewed it in time); never sent
    ├── PermanentError                refused for good: a status condition, no hot retry;
    │   │                             gRPC FAILED_PRECONDITION; CLI exit 1
    │   │                             .status: the HTTP status if an apiserver answered
    │   ├── ApiPermanentError         400, 401, 403 (RBAC: a Forbidden condition), 404, 422
    │   ├── InvalidRequestError       a malformed status-API request: gRPC INVALID_ARGUMENT
    │   └── DrillSpecError            an invalid Drill spec: refused at admission or plan
    │                                 .field: the path of the offending field
    └── ConfigError                   invalid configuration, at start-up: CLI exit 1, one line
        └── UnsafeKubeconfigError     a kubeconfig would run a plugin or read local files

    QueueShutdown                     not an error: the work queue's end-of-work signal

``QueueShutdown`` stands outside ``FederatorError`` on purpose: it is control flow (like
``asyncio.QueueShutdown`` and ``StopAsyncIteration``), raised by ``WorkQueue.get`` to tell a
worker to return, so no ``except FederatorError`` handler can mistake a shutdown for a failure.

The data a caller acts on is a constructor field (``retry_after``, ``status``), read as an
attribute of the class it is declared on: no ``getattr`` probes. Wrap the cause:
``raise ApiRetryableError(f"list ServiceEntries in c2: {exc!r}") from exc``.
"""

from __future__ import annotations


class FederatorError(Exception):
    """Base of every error the federator raises on purpose."""


class RetryableError(FederatorError):
    """A transient failure; the same operation may succeed later. Requeue with backoff."""

    retry_after: float
    """Seconds the server asked to wait before retrying (``Retry-After``); 0 if it did not."""

    def __init__(self, message: str, *, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ApiRetryableError(RetryableError):
    """A retryable apiserver failure: no answer (connection, timeout), 409, 429 or 5xx."""

    status: int | None
    """The HTTP status; None when the apiserver did not answer."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, retry_after=retry_after or 0.0)
        self.status = status


class ExpiredError(RetryableError):
    """The requested resourceVersion is too old (410 Gone): the caller must relist."""


class NotLeaderError(RetryableError):
    """A write refused before it was sent: this replica does not hold the leader Lease, or
    has not renewed it within the renew deadline (it may have been paused). Fencing (R5)."""


class PermanentError(FederatorError):
    """Bad input or a refused operation; retrying the same input cannot help."""

    status: int | None
    """The HTTP status of the refusal when an apiserver answered (403: RBAC denies the verb)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ApiPermanentError(PermanentError):
    """The apiserver refused the request for good (invalid, forbidden, unknown resource)."""

    status: int

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message, status=status)


class InvalidRequestError(PermanentError):
    """A status-API request the server cannot answer as asked (gRPC INVALID_ARGUMENT)."""


class DrillSpecError(PermanentError):
    """A Drill spec (the resource's ``spec`` or the CLI's file) is invalid. The message starts
    with the field path: ``spec.steps[2].abort.percentage: must be between 0 and 100``."""

    field: str
    """The path of the offending field (``spec.steps[2].abort.percentage``)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


class ConfigError(FederatorError):
    """The configuration is invalid. The message names the field and the fix."""


class UnsafeKubeconfigError(ConfigError):
    """A kubeconfig would run a plugin or read local files (credential exfiltration risk)."""


class QueueShutdown(Exception):  # noqa: N818 (a signal, not an error: see the module docstring)
    """``WorkQueue.get`` was called on (or woken by) a queue that is shut down."""

"""The collectors' exception tree: every exception class of the collectors lives here.

Every failure a sender or a query client can see is either retryable (try again later:
503, UNAVAILABLE, no Forward ack) or permanent (the input is bad and retrying cannot help:
400, INVALID_ARGUMENT, the Forward message is refused). Receivers and query APIs map these
two branches to protocol answers; nothing else should escape a server. Keeping the whole
tree in one module lets a reader see every answer a component can give in one place::

    CollectorError
    ├── RetryableError(retry_after=)       503 / UNAVAILABLE / no Forward ack
    │   ├── StoreUnavailableError          Redis did not answer
    │   ├── MemoryLimitError               remote_write 429; elsewhere 503 / no ack
    │   ├── QueueFullError                 remote_write 429; elsewhere 503 / no ack
    │   ├── ShuttingDownError              503 / no ack
    │   ├── TooBusyError                   OTLP/HTTP 429, OTLP/gRPC UNAVAILABLE
    │   └── QueryTimeoutError              Prometheus API ``timeout`` 503
    ├── PermanentError(status=)            400 / INVALID_ARGUMENT / Forward refusal
    │   ├── LimitExceededError             413 (Prometheus API: ``execution`` 422)
    │   ├── TooLargeError                  413 / RESOURCE_EXHAUSTED
    │   ├── UnsupportedMediaError          415
    │   └── QueryError
    │       ├── BadQueryError              Prometheus API ``bad_data`` 400
    │       │   └── ParamError             400, naming the parameter
    │       └── QueryExecutionError        Prometheus API ``execution`` 422
    ├── ChunkError (also a ValueError)     500: stored data this codec cannot read
    └── ConfigError                        refuses to start; the message names the fix

``RetryableError.retry_after`` and ``PermanentError.status`` are constructor fields, so a
handler reads them from the exception it caught instead of probing for attributes.

Three private control-flow signals are deliberately not in the tree: each is raised and
caught inside one module and never escapes it. ``_RefusedError``
(``collectors.receivers.prometheus.remote_write``) carries a remote_write refusal to the
one place that answers it; ``_ClosedError`` (``collectors.receivers.forward.receiver``)
ends a Forward connection quietly; ``_SlowPathError``
(``collectors.receivers.prometheus.protocol.remote_write``) sends one series from the fast
decoder to protobuf's.
"""

from __future__ import annotations

from typing import ClassVar


class CollectorError(Exception):
    """Base of every error raised on purpose by meshfed's collectors and store."""


class RetryableError(CollectorError):
    """A transient failure: the store is unavailable or the collector overloaded.

    Receivers answer 503 / UNAVAILABLE, or withhold the Forward ack, so the sender retries
    with backoff; a retried request can succeed unchanged.
    """

    def __init__(self, message: str, /, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        """Seconds the sender should wait before retrying, when the raiser knows better;
        ``None`` leaves the wait to the receiver's configured ``Retry-After``."""


class PermanentError(CollectorError):
    """Bad input or an unsupported request: retrying the same input fails the same way.

    Receivers answer ``status`` (400 unless a subclass says otherwise) / INVALID_ARGUMENT;
    the Forward receiver refuses the message (closes the connection, counts the refusal).
    """

    default_status: ClassVar[int] = 400
    """The HTTP status of this class when the raiser gives none."""

    def __init__(self, message: str, /, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = self.default_status if status is None else status
        """The HTTP status this error maps to (400, 413, 415, 422...)."""


class ConfigError(CollectorError):
    """Configuration is invalid; the message names the field and the fix.

    Raised by ``validate()`` and while binding listeners at start-up: the collector refuses
    to start instead of running misconfigured. Never a request's answer.
    """


class ChunkError(CollectorError, ValueError):
    """A stored blob is not a chunk this codec wrote (corrupt or foreign data).

    Neither the client nor a retry can fix it, and it is not the client's fault: the
    query API answers 500 (``internal``) and logs it. Also a ``ValueError``, as the
    decoding error it is.
    """


# --- retryable ------------------------------------------------------------------------


class StoreUnavailableError(RetryableError):
    """Redis did not acknowledge a write or a read (connection refused, timeout, failover),
    or the store is not started. Receivers answer 503 / UNAVAILABLE / no Forward ack; the
    query APIs answer 503 (Prometheus ``unavailable``)."""


class MemoryLimitError(RetryableError):
    """The collector is over its memory limit (process RSS or bytes in flight).

    remote_write answers 429; the other receivers 503 / UNAVAILABLE / no Forward ack.
    """


class QueueFullError(RetryableError):
    """The pipeline's bounded queue is full; a caller that does not fit is refused at once.

    remote_write answers 429; the other receivers 503 / UNAVAILABLE / no Forward ack.
    """


class ShuttingDownError(RetryableError):
    """The pipeline no longer accepts records (or dropped them at shutdown): 503 /
    UNAVAILABLE / no Forward ack, so the sender retries elsewhere or later."""


class TooBusyError(RetryableError):
    """More OTLP requests are in flight than ``otlp.max_concurrent_requests`` allows:
    OTLP/HTTP 429 with ``Retry-After``, OTLP/gRPC UNAVAILABLE."""


class QueryTimeoutError(RetryableError):
    """PromQL evaluation ran past its deadline: the Prometheus API answers ``timeout``
    (503), as Prometheus does."""


# --- permanent ------------------------------------------------------------------------


class LimitExceededError(PermanentError):
    """A request asks for more than a configured bound (series, points, spans, bytes).

    Receivers answer 413 (a Forward connection is closed); the Prometheus API answers
    ``execution`` (422), as Prometheus does for a storage limit hit while querying.
    """

    default_status = 413


class TooLargeError(PermanentError):
    """An OTLP message is larger than ``otlp.max_message_bytes``: 413 / RESOURCE_EXHAUSTED."""

    default_status = 413


class UnsupportedMediaError(PermanentError):
    """A Content-Type or Content-Encoding meshfed does not decode: 415."""

    default_status = 415


class QueryError(PermanentError):
    """Base of every error the PromQL engine raises on purpose.

    Both kinds are permanent: the same query on the same data fails the same way, so the
    API must never answer them with 5xx.
    """


class BadQueryError(QueryError):
    """The query or a parameter is malformed or unsupported: the Prometheus API answers
    ``bad_data`` (400), prefixing the message with ``invalid parameter "query"``."""


class ParamError(BadQueryError):
    """A malformed request parameter of a query API; ``parameter`` names it.

    ``str()`` is Prometheus's wording (``invalid parameter "time": ...``), which the
    Prometheus API answers as ``bad_data`` (400). The trace and log APIs answer 400 with
    their own JSON error, built from ``parameter`` and ``reason``.
    """

    def __init__(self, parameter: str, reason: str) -> None:
        super().__init__(f'invalid parameter "{parameter}": {reason}')
        self.parameter = parameter
        """The request parameter at fault, as the client spelled it."""
        self.reason = reason
        """What is wrong with it, without the parameter's name."""


class QueryExecutionError(QueryError):
    """The query parsed but failed while evaluating (vector matching cardinality, too many
    samples): the Prometheus API answers ``execution`` (422)."""

    default_status = 422

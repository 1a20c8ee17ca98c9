"""The collectors' exception tree.

Every failure is either retryable (the sender should try again later: 503, UNAVAILABLE, no
Forward ack) or permanent (the input is bad and retrying cannot help: 400, INVALID_ARGUMENT).
Receivers map these two classes to protocol codes; nothing else should escape a server.
"""


class CollectorError(Exception):
    """Base of every error raised on purpose by meshfed's collectors and store."""


class RetryableError(CollectorError):
    """A transient failure: the store is unavailable or overloaded. Retry with backoff."""


class PermanentError(CollectorError):
    """Bad input or an unsupported request. Retrying the same input fails the same way."""


class StoreUnavailableError(RetryableError):
    """Redis did not acknowledge a write or a read (connection refused, timeout, failover)."""


class LimitExceededError(PermanentError):
    """A request asks for more than a configured bound (series, points, spans, bytes)."""


class ConfigError(CollectorError):
    """Configuration is invalid; the message names the field and the fix."""

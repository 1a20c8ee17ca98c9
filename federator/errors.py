"""The federator's exception tree.

Every failure raised on purpose is one of three kinds, and the kind decides what the caller
does with it:

- ``RetryableError``: transient (an apiserver is unreachable, a write conflicted, a watch
  expired). The reconciler requeues the key with jittered backoff; nothing is pruned.
- ``PermanentError``: retrying the same input fails the same way (an object the apiserver
  rejects as invalid, RBAC forbids a verb). Reported as a condition; no hot retry loop.
- ``ConfigError``: the configuration is invalid. Raised at start-up only; the message names
  the field and says how to fix it, so the process can exit with a one-line explanation.

Wrap the cause: ``raise RetryableError("list ServiceEntries in c2 failed") from exc``.
"""


class FederatorError(Exception):
    """Base of every error the federator raises on purpose."""


class RetryableError(FederatorError):
    """A transient failure; the same operation may succeed later. Requeue with backoff."""


class PermanentError(FederatorError):
    """Bad input or a refused operation; retrying the same input cannot help."""


class ConfigError(FederatorError):
    """The configuration is invalid. The message names the field and the fix."""


class UnsafeKubeconfigError(ConfigError):
    """A kubeconfig would run a plugin or read local files (credential exfiltration risk)."""

"""Refuses kubeconfigs that could leak credentials or run code on the federator's host.

A member cluster's kubeconfig may come from a Secret that someone else can write. A kubeconfig
is code-shaped: ``users[].user.exec`` runs a command, ``auth-provider`` runs a plugin, and every
``*-file``/path field makes the client read a file from the federator's filesystem (for example
the federator's own service-account token) and send it to whatever server the kubeconfig names.
So a kubeconfig is accepted only when it is self-contained: a server URL, inline CA data, and
inline credentials (``token``, ``client-certificate-data``/``client-key-data``, or
``username``/``password``). Multicluster controllers that read remote-cluster Secrets (Istio's
remote secrets among them) restrict kubeconfigs for the same reason.

Pure: takes the parsed document (a dict), raises ``UnsafeKubeconfigError`` naming the field
and the fix. The kube layer calls it before building a client from any kubeconfig.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from federator.errors import UnsafeKubeconfigError

# field -> (why it is refused, what to use instead)
_USER_FIELDS: dict[str, tuple[str, str]] = {
    "exec": (
        "runs a local command to obtain credentials",
        "mint a long-lived token for a service account and put it inline in user.token",
    ),
    "auth-provider": (
        "runs an auth-provider plugin",
        "use an inline user.token or client-certificate-data/client-key-data",
    ),
    "tokenFile": (
        "reads a token from a local file",
        "put the token inline in user.token",
    ),
    "client-certificate": (
        "reads a client certificate from a local file",
        "use client-certificate-data with the base64-encoded PEM",
    ),
    "client-key": (
        "reads a client key from a local file",
        "use client-key-data with the base64-encoded PEM",
    ),
}
_CLUSTER_FIELDS: dict[str, tuple[str, str]] = {
    "certificate-authority": (
        "reads the CA bundle from a local file",
        "use certificate-authority-data with the base64-encoded PEM",
    ),
}


def _entries(
    doc: Mapping[str, Any], section: str, inner: str, source: str
) -> list[tuple[int, Any]]:
    items = doc.get(section) or []
    if not isinstance(items, Sequence) or isinstance(items, str | bytes):
        raise UnsafeKubeconfigError(f"{source}: {section} must be a list")
    out: list[tuple[int, Any]] = []
    for i, item in enumerate(items):
        body = item.get(inner) if isinstance(item, Mapping) else None
        if body is None:
            continue
        if not isinstance(body, Mapping):
            raise UnsafeKubeconfigError(f"{source}: {section}[{i}].{inner} must be a mapping")
        out.append((i, body))
    return out


def check_kubeconfig(doc: Mapping[str, Any], *, source: str) -> None:
    """Raise ``UnsafeKubeconfigError`` if ``doc`` runs plugins or reads local files.

    ``source`` names where the document came from (``"Secret meshfed-system/c2"``) and is put
    at the front of the message. Every offending field is reported, not just the first.
    """
    if not isinstance(doc, Mapping):
        raise UnsafeKubeconfigError(f"{source}: a kubeconfig must be a YAML mapping")
    problems: list[str] = []
    for i, user in _entries(doc, "users", "user", source):
        for name in sorted(_USER_FIELDS):
            if user.get(name):
                why, fix = _USER_FIELDS[name]
                problems.append(f"users[{i}].user.{name} {why}; fix: {fix}")
    for i, cluster in _entries(doc, "clusters", "cluster", source):
        for name in sorted(_CLUSTER_FIELDS):
            if cluster.get(name):
                why, fix = _CLUSTER_FIELDS[name]
                problems.append(f"clusters[{i}].cluster.{name} {why}; fix: {fix}")
    if problems:
        raise UnsafeKubeconfigError(
            f"{source} is not accepted (only self-contained kubeconfigs are, to prevent "
            f"credential exfiltration): " + "; ".join(problems)
        )

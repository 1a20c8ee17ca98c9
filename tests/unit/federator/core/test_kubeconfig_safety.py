"""Kubeconfigs from Secrets must be self-contained: no plugins, no local files."""

from __future__ import annotations

from typing import Any

import pytest

from federator.core.kubeconfig_safety import check_kubeconfig
from federator.errors import ConfigError, UnsafeKubeconfigError


def kubeconfig(
    *, user: dict[str, Any] | None = None, cluster: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "c1",
                "cluster": cluster
                or {"server": "https://127.0.0.1:6443", "certificate-authority-data": "Q0E="},
            }
        ],
        "users": [{"name": "c1", "user": user or {"token": "abc"}}],
        "contexts": [{"name": "c1", "context": {"cluster": "c1", "user": "c1"}}],
        "current-context": "c1",
    }


@pytest.mark.parametrize(
    "doc",
    [
        pytest.param(kubeconfig(), id="inline-token"),
        pytest.param(
            kubeconfig(user={"client-certificate-data": "Y2VydA==", "client-key-data": "a2V5"}),
            id="inline-client-cert",
        ),
        pytest.param(kubeconfig(user={"username": "u", "password": "p"}), id="basic-auth"),
        pytest.param({"apiVersion": "v1", "kind": "Config"}, id="empty-sections"),
    ],
)
def test_safe_kubeconfigs_pass(doc: dict[str, Any]) -> None:
    check_kubeconfig(doc, source="Secret meshfed-system/c1")


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        pytest.param(
            kubeconfig(user={"exec": {"command": "aws", "apiVersion": "v1"}}),
            "users[0].user.exec runs a local command",
            id="exec-plugin",
        ),
        pytest.param(
            kubeconfig(user={"auth-provider": {"name": "gcp"}}),
            "users[0].user.auth-provider runs an auth-provider plugin",
            id="auth-provider",
        ),
        pytest.param(
            kubeconfig(user={"tokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token"}),
            "users[0].user.tokenFile reads a token from a local file; fix: put the token inline",
            id="token-file",
        ),
        pytest.param(
            kubeconfig(user={"client-certificate": "/c.pem", "client-key": "/k.pem"}),
            "users[0].user.client-certificate reads a client certificate from a local file",
            id="client-cert-files",
        ),
        pytest.param(
            kubeconfig(cluster={"server": "https://x", "certificate-authority": "/ca.pem"}),
            "clusters[0].cluster.certificate-authority reads the CA bundle from a local file; "
            "fix: use certificate-authority-data",
            id="ca-file",
        ),
    ],
)
def test_unsafe_kubeconfigs_rejected(doc: dict[str, Any], expected: str) -> None:
    with pytest.raises(UnsafeKubeconfigError) as info:
        check_kubeconfig(doc, source="Secret meshfed-system/c1")
    message = str(info.value)
    assert message.startswith("Secret meshfed-system/c1 is not accepted")
    assert expected in message
    assert isinstance(info.value, ConfigError)


def test_every_problem_is_reported() -> None:
    doc = kubeconfig(
        user={"client-key": "/k.pem", "exec": {"command": "x"}},
        cluster={"server": "https://x", "certificate-authority": "/ca"},
    )
    with pytest.raises(UnsafeKubeconfigError) as info:
        check_kubeconfig(doc, source="file")
    for field in ("user.exec", "user.client-key", "cluster.certificate-authority"):
        assert field in str(info.value)


@pytest.mark.parametrize(
    "doc",
    [
        pytest.param(["not", "a", "mapping"], id="list"),
        pytest.param({"users": "oops"}, id="users-not-list"),
        pytest.param({"users": [{"name": "u", "user": "tok"}]}, id="user-not-mapping"),
    ],
)
def test_malformed_kubeconfigs_rejected(doc: Any) -> None:
    with pytest.raises(UnsafeKubeconfigError):
        check_kubeconfig(doc, source="file")

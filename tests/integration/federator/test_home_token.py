"""R7, in-cluster credentials: the home client's token file is replaced under a running
federator (as the kubelet rotates a projected service-account token) and the old token is
made invalid; the federator keeps renewing its Lease with the new one, without a restart.
It runs as the federator ServiceAccount of the Helm chart (release ``meshfed``) with the
chart's home RBAC, so the Lease rules shipped there are the ones exercised."""

from __future__ import annotations

import base64
import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from federator.core.config_parse import load_config
from federator.kube.client import Credentials
from federator.kube.token_file import FileToken
from tests.helpers.chart import RBAC_KINDS, render
from tests.helpers.federator_harness import (
    HARNESS_SETTINGS,
    FederatorThread,
    apply,
    kubectl,
    wait_for,
)
from tests.helpers.federator_members import cluster_entry
from tests.helpers.sandbox import RunningSandbox

NAMESPACE, ACCOUNT, LEASE = "meshfed-system", "meshfed-federator", "meshfed-federator"
BOUND = ("token-old", "token-new")
"""Secrets the two tokens are bound to: deleting one invalidates its token."""


def _deploy_rbac() -> list[dict[str, Any]]:
    """The chart's home-cluster RBAC (not the Deployment); the federator's default Lease."""
    docs = render(values={"federator": {"clusters": [{"name": "c1"}]}}, namespace=NAMESPACE)
    return [d for d in docs if d["kind"] in RBAC_KINDS]


def _replace(path: Path, token: str) -> None:
    new = path.with_suffix(".new")
    new.write_text(token)
    new.rename(path)


def test_rotated_token_file_is_used_without_restart(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    kc = sandbox.kubeconfig
    kubectl(kc, "c1", "create", "namespace", NAMESPACE, check=False)
    apply(kc, "c1", _deploy_rbac())
    secrets = [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": n, "namespace": NAMESPACE}}
        for n in BOUND
    ]
    apply(kc, "c1", secrets)
    token = {
        n: kubectl(
            kc, "c1", "create", "token", ACCOUNT, "-n", NAMESPACE, "--duration=1h",
            "--bound-object-kind=Secret", f"--bound-object-name={n}",
        ).stdout.strip()
        for n in BOUND
    }  # fmt: skip
    path = tmp_path / "token"
    path.write_text(token["token-old"])
    entry = cluster_entry(sandbox, "c1")
    home = Credentials(
        server=entry["server"],
        ca_pem=base64.b64decode(entry["certificate-authority-data"]),
        token_file=str(path),
    )
    config = load_config(sandbox.directory / "federation.yaml")
    config = dataclasses.replace(
        config,
        leader_election=dataclasses.replace(config.leader_election, enabled=True, lease_name=LEASE),
    )
    fed = FederatorThread(config, settings=HARNESS_SETTINGS, home=home)
    try:
        elector = fed.app.elector
        assert elector is not None
        wait_for("leading with the first token", lambda: elector.leading, timeout=30)
        _replace(path, token["token-new"])
        kubectl(kc, "c1", "delete", "secret", "token-old", "-n", NAMESPACE)
        rotated = datetime.now(UTC) + timedelta(seconds=4)  # past the old token's last use

        def renewed_after_rotation() -> bool:
            renew = elector.leadership().renew_time
            return renew is not None and renew > rotated

        wait_for("a renewal with the new token", renewed_after_rotation, timeout=30)
        home_client = fed.app.registry.home
        assert home_client is not None and isinstance(home_client._http.auth, FileToken)
        assert home_client._http.auth.reloads == 2
        assert elector.leading
    finally:
        fed.stop()
        kubectl(kc, "c1", "delete", "secret", *BOUND, "-n", NAMESPACE, check=False)

"""Members reached through labelled kubeconfig Secrets in the home cluster (c1), as the
least-privileged ServiceAccount of the chart's member mode (``tests.helpers.chart``): tokens, member
kubeconfigs, Secrets, the federation config that uses them, and a federator wired like
``meshfed federate --home-kubeconfig`` (credential rotation on). Shared by the Secret and the
rotation tests."""

from __future__ import annotations

import base64
import dataclasses
import ssl
from pathlib import Path
from typing import Any

import httpx
import yaml

from federator.core.config import FederationConfig
from federator.core.model import CLUSTER_SECRET_LABEL
from federator.kube.clusters import file_credentials
from federator.kube.credentials_watch import RotationSettings
from tests.helpers.chart import MEMBER_ACCOUNT, member_rbac
from tests.helpers.federator_harness import HARNESS_SETTINGS, FederatorThread, apply, kubectl
from tests.helpers.sandbox import RunningSandbox

HOME, NAMESPACE, ACCOUNT = "c1", "meshfed-system", MEMBER_ACCOUNT


def cluster_entry(sandbox: RunningSandbox, cluster: str) -> dict[str, Any]:
    """The ``cluster`` section (server, CA data) of ``cluster`` in the sandbox kubeconfig."""
    doc = yaml.safe_load(sandbox.kubeconfig.read_text())
    [entry] = [c["cluster"] for c in doc["clusters"] if c["name"] == cluster]
    return dict(entry)


def mint_token(sandbox: RunningSandbox, cluster: str) -> str:
    out = kubectl(
        sandbox.kubeconfig, cluster, "create", "token", ACCOUNT, "-n", NAMESPACE, "--duration=2h"
    )
    return out.stdout.strip()


def member_kubeconfig(
    sandbox: RunningSandbox, cluster: str, user: dict[str, Any]
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": cluster_entry(sandbox, cluster)}],
        "users": [{"name": ACCOUNT, "user": user}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": ACCOUNT}}],
        "current-context": cluster,
    }


def put_secret(
    sandbox: RunningSandbox,
    name: str,
    kubeconfig: dict[str, Any],
    *,
    label: str | None,
    annotations: dict[str, str] | None = None,
) -> None:
    """Create or update a kubeconfig Secret in the home cluster's federator namespace."""
    meta: dict[str, Any] = {"name": name, "namespace": NAMESPACE}
    if label is not None:
        meta["labels"] = {CLUSTER_SECRET_LABEL: label}
    if annotations:
        meta["annotations"] = annotations
    raw = yaml.safe_dump(kubeconfig, sort_keys=True).encode()
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta,
        "data": {"kubeconfig": base64.b64encode(raw).decode()},
    }
    apply(sandbox.kubeconfig, HOME, [secret])


def prepare_members(sandbox: RunningSandbox, members: tuple[str, ...]) -> None:
    """The chart's member RBAC in each member, the federator namespace in the home cluster,
    and a labelled Secret ``<member>-kubeconfig`` with a fresh ServiceAccount token per member."""
    kubectl(sandbox.kubeconfig, HOME, "create", "namespace", NAMESPACE, check=False)
    rbac = member_rbac(NAMESPACE)
    for member in members:
        kubectl(sandbox.kubeconfig, member, "create", "namespace", NAMESPACE, check=False)
        apply(sandbox.kubeconfig, member, rbac)
        user = {"token": mint_token(sandbox, member)}
        put_secret(
            sandbox, f"{member}-kubeconfig", member_kubeconfig(sandbox, member, user), label=member
        )


def secret_config(
    sandbox: RunningSandbox, tmp_path: Path, secrets: dict[str, str], **changes: Any
) -> Path:
    """The sandbox's federation.yaml with ``secrets`` ({cluster: Secret name}) as Secrets."""
    doc = yaml.safe_load((sandbox.directory / "federation.yaml").read_text())
    for cluster in doc["clusters"]:
        if cluster["name"] in secrets:
            del cluster["kubeconfig"]
            cluster["secret"] = {"name": secrets[cluster["name"]]}
    doc.update(changes)
    path = tmp_path / "federation.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def api_status(sandbox: RunningSandbox, cluster: str, token: str, path: str) -> int:
    """HTTP status of a GET on ``cluster``'s apiserver with a bearer ``token``."""
    entry = cluster_entry(sandbox, cluster)
    ctx = ssl.create_default_context(
        cadata=base64.b64decode(entry["certificate-authority-data"]).decode()
    )
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(verify=ctx, timeout=10) as client:
        return client.get(entry["server"] + path, headers=headers).status_code


def secret_federator(
    config: FederationConfig, *, home_kubeconfig: Path, rotation: RotationSettings | None = None
) -> FederatorThread:
    """A ``FederatorThread`` wired like ``meshfed federate --home-kubeconfig``: the home
    cluster's credentials from ``home_kubeconfig`` (context c1), members from Secrets, and the
    credential-rotation watcher swapping clients in."""
    settings = dataclasses.replace(
        HARNESS_SETTINGS, watch_credentials=True, rotation=rotation or RotationSettings()
    )
    home = file_credentials(str(home_kubeconfig), HOME)
    return FederatorThread(config, settings=settings, home=home)

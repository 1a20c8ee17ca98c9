"""Members reached through labelled kubeconfig Secrets in the home cluster (c1), as the
least-privileged ServiceAccount of deploy/multicluster/member-rbac.yaml (S6): federation
works, Secrets in the member are unreadable, a denied verb is reported without deletions or a
crash, and unlabelled or unsafe Secrets are refused by the CLI with the documented message.

The helpers here (tokens, Secrets, the in-process ``SecretFederator``) are shared with
test_rotation.py."""

from __future__ import annotations

import base64
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from federator.core.config import FederationConfig, load_config
from federator.core.model import CLUSTER_SECRET_LABEL, ClusterId, ServiceKey
from federator.errors import ConfigError, PermanentError
from federator.kube.client import SECRETS, KubeClient
from federator.kube.clusters import file_credentials, open_clusters
from federator.kube.credentials_watch import CredentialsWatcher, RotationSettings
from federator.reactor.runner import Runner, RunnerSettings
from federator.status import FORBIDDEN, RefusalCondition
from tests.helpers.federator_harness import (
    FederatorThread,
    app_docs,
    apply,
    kubectl,
    service_entry,
    wait_for,
)
from tests.helpers.paths import REPO_ROOT
from tests.helpers.sandbox import RunningSandbox

MESHFED = str(Path(sys.executable).parent / "meshfed")
MEMBER_RBAC = REPO_ROOT / "deploy" / "multicluster" / "member-rbac.yaml"
HOME, NAMESPACE, ACCOUNT = "c1", "meshfed-system", "meshfed-federator"


# ---- shared helpers (also used by test_rotation.py)
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
    """member-rbac.yaml in each member, the federator namespace in the home cluster, and a
    labelled Secret ``<member>-kubeconfig`` with a fresh ServiceAccount token per member."""
    kubectl(sandbox.kubeconfig, HOME, "create", "namespace", NAMESPACE, check=False)
    for member in members:
        kubectl(sandbox.kubeconfig, member, "apply", "-f", str(MEMBER_RBAC))
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


class SecretFederator(FederatorThread):
    """``FederatorThread`` wired like ``meshfed federate --home-kubeconfig``: a home client,
    members from Secrets, and the credential-rotation watcher swapping clients in the runner."""

    def __init__(
        self,
        config: FederationConfig,
        *,
        home_kubeconfig: Path,
        rotation: RotationSettings | None = None,
        settings: RunnerSettings | None = None,
    ) -> None:
        self.home = KubeClient(
            cluster=ClusterId("home"), credentials=file_credentials(str(home_kubeconfig), HOME)
        )
        self.rotation_settings = rotation or RotationSettings()
        self.watcher: CredentialsWatcher | None = None
        super().__init__(config, settings=settings)

    async def _start(self) -> None:
        conns = await open_clusters(self.config, home=self.home)
        self.clients = conns.clients
        self.runner = Runner(
            config=self.config,
            clients=self.clients,
            metrics=self.metrics,
            status=self.status,
            settings=self._settings,
        )
        self.watcher = CredentialsWatcher(
            config=self.config,
            home=self.home,
            loaded=conns.loaded,
            on_rotate=self.runner.replace_client,
            metrics=self.metrics,
            settings=self.rotation_settings,
        )
        await self.runner.start()
        await self.watcher.start()

    async def _stop(self) -> None:
        if self.watcher is not None:
            await self.watcher.shutdown()
        await super()._stop()
        await self.home.aclose()


def _delete_app(sandbox: RunningSandbox, cluster: str, name: str) -> None:
    kubectl(
        sandbox.kubeconfig, cluster, "delete", "deployment,service", name,
        "--ignore-not-found", "--wait=false", check=False,
    )  # fmt: skip


# ---- tests
MEMBERS = ("c2", "c3")


@pytest.fixture(scope="module")
def secret_federator(
    sandbox: RunningSandbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SecretFederator]:
    prepare_members(sandbox, MEMBERS)
    config_path = secret_config(
        sandbox, tmp_path_factory.mktemp("secrets"), {m: f"{m}-kubeconfig" for m in MEMBERS}
    )
    fed = SecretFederator(load_config(config_path), home_kubeconfig=sandbox.kubeconfig)
    try:
        wait_for("federator ready", lambda: fed.status.ready, timeout=30)
        yield fed
    finally:
        fed.stop()


def test_federates_through_secrets_with_least_privilege(
    sandbox: RunningSandbox, secret_federator: SecretFederator
) -> None:
    kc, name = sandbox.kubeconfig, "sec-basic"
    apply(kc, "c2", app_docs(name, replicas=1))
    try:
        for ctx in ("c1", "c3"):
            wait_for(f"entry in {ctx}", lambda c=ctx: service_entry(kc, c, name))  # type: ignore[misc]
        # S6: the member account (the token in the Secret) writes Istio objects, reads no Secrets.
        doc = yaml.safe_load(
            base64.b64decode(
                yaml.safe_load(
                    kubectl(kc, HOME, "get", "secret", "c3-kubeconfig", "-n", NAMESPACE,
                            "-o", "yaml").stdout
                )["data"]["kubeconfig"]
            )
        )  # fmt: skip
        token = doc["users"][0]["user"]["token"]
        assert api_status(sandbox, "c3", token, "/api/v1/namespaces/meshfed-system/secrets") == 403
        assert api_status(sandbox, "c3", token, "/api/v1/secrets") == 403
        se = "/apis/networking.istio.io/v1/namespaces/default/serviceentries"
        assert api_status(sandbox, "c3", token, f"{se}/meshfed-{name}") == 200

        async def read_secret_as_federator() -> int:
            try:
                await secret_federator.clients[ClusterId("c3")].get(SECRETS, NAMESPACE, "x")
            except PermanentError as exc:
                return int(getattr(exc, "status", 0))
            return 200

        assert secret_federator.call(read_secret_as_federator()) == 403
        assert secret_federator.metric("meshfed_federator_credential_reloads_total") == 0
    finally:
        _delete_app(sandbox, "c2", name)


def _role_without_istio_delete() -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(MEMBER_RBAC.read_text()) if d["kind"] == "ClusterRole"]
    for rule in docs[0]["rules"]:
        if "networking.istio.io" in rule["apiGroups"]:
            rule["verbs"] = [v for v in rule["verbs"] if v != "delete"]
    return docs


def test_denied_delete_is_reported_without_deletion_or_crash(
    sandbox: RunningSandbox, secret_federator: SecretFederator
) -> None:
    kc, gone, later = sandbox.kubeconfig, "sec-denied", "sec-after"
    fed = secret_federator
    apply(kc, "c3", app_docs(gone, replicas=1))
    try:
        for ctx in ("c1", "c2"):
            wait_for(f"entry in {ctx}", lambda c=ctx: service_entry(kc, c, gone))  # type: ignore[misc]
        apply(kc, "c2", _role_without_istio_delete())
        errors = fed.metric("meshfed_federator_reconciles_total", {"result": "error"})
        _delete_app(sandbox, "c3", gone)  # the federator now has to prune in c1 and c2
        wait_for("entry pruned in c1", lambda: service_entry(kc, "c1", gone) is None)
        wait_for(
            "refused delete counted",
            lambda: fed.metric("meshfed_federator_reconciles_total", {"result": "error"}) > errors,
        )
        assert service_entry(kc, "c2", gone) is not None  # refused: nothing deleted in c2
        assert fed.metric("meshfed_federator_reconciles_total", {"result": "crash"}) == 0
        # The denied verb is a condition on the service for c2 (well within one resync).
        refusals = wait_for("Forbidden conditions for c2", lambda: _refusals(fed, gone))
        assert {(c.cluster, c.reason, c.verb, c.kind, c.name) for c in refusals} == {
            ("c2", FORBIDDEN, "delete", kind, f"default/meshfed-{gone}")
            for kind in ("ServiceEntry", "DestinationRule")
        }
        assert all("HTTP 403" in c.message and "cannot delete" in c.message for c in refusals)
        # Still federating (no crash loop): a new export reaches c2.
        apply(kc, "c3", app_docs(later, replicas=1))
        wait_for("new entry in c2", lambda: service_entry(kc, "c2", later))
        assert service_entry(kc, "c2", gone) is not None
    finally:
        kubectl(kc, "c2", "apply", "-f", str(MEMBER_RBAC))
        _delete_app(sandbox, "c3", later)
        _delete_app(sandbox, "c3", gone)
    wait_for("delete allowed again in c2", lambda: _may_delete_entries(sandbox, "c2"))
    fed.resync_all()  # one resync with delete allowed again prunes the leftover
    wait_for("queue idle", fed.idle)
    assert service_entry(kc, "c2", gone) is None
    assert not _refusals(fed, gone)  # cleared by the successful prune
    assert fed.metric("meshfed_federator_reconciles_total", {"result": "crash"}) == 0


def _refusals(fed: SecretFederator, name: str) -> list[RefusalCondition]:
    status = fed.status.service(ServiceKey("default", name))
    conditions = () if status is None else status.conditions
    return [c for c in conditions if isinstance(c, RefusalCondition)]


def _may_delete_entries(sandbox: RunningSandbox, cluster: str) -> bool:
    out = kubectl(
        sandbox.kubeconfig, cluster, "auth", "can-i", "delete",
        "serviceentries.networking.istio.io", "-n", "default",
        f"--as=system:serviceaccount:{NAMESPACE}:{ACCOUNT}", check=False,
    )  # fmt: skip
    return out.stdout.strip() == "yes"


EXEC_USER = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "steal"}}
TOKEN_FILE_USER = {"tokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token"}
NOT_LABELLED = "Secret meshfed-system/{name} is not labelled meshfed.io/cluster=c2: label it"
UNSAFE = (
    "Secret meshfed-system/{name} is not accepted (only self-contained kubeconfigs are, to "
    "prevent credential exfiltration): "
)


@pytest.mark.parametrize(
    ("secret", "user", "label", "expected"),
    [
        pytest.param("bad-nolabel", None, None, NOT_LABELLED, id="unlabelled"),
        pytest.param("bad-label", None, "c3", NOT_LABELLED, id="labelled-for-another-cluster"),
        pytest.param(
            "bad-exec", EXEC_USER, "c2",
            UNSAFE + "users[0].user.exec runs a local command to obtain credentials; fix: mint",
            id="exec-plugin",
        ),
        pytest.param(
            "bad-tokenfile", TOKEN_FILE_USER, "c2",
            UNSAFE + "users[0].user.tokenFile reads a token from a local file; fix: put the token",
            id="token-file",
        ),
    ],
)  # fmt: skip
async def test_unusable_secret_is_refused(
    sandbox: RunningSandbox,
    tmp_path: Path,
    secret: str,
    user: dict[str, Any] | None,
    label: str | None,
    expected: str,
) -> None:
    kubectl(sandbox.kubeconfig, HOME, "create", "namespace", NAMESPACE, check=False)
    kubeconfig = member_kubeconfig(sandbox, "c2", user or {"token": "x"})
    put_secret(sandbox, secret, kubeconfig, label=label)
    config = load_config(secret_config(sandbox, tmp_path, {"c2": secret}))
    home = KubeClient(
        cluster=ClusterId("home"), credentials=file_credentials(str(sandbox.kubeconfig), HOME)
    )
    try:
        with pytest.raises(ConfigError) as refused:
            await open_clusters(config, home=home)
    finally:
        await home.aclose()
    assert str(refused.value).startswith(expected.format(name=secret)), refused.value


def test_cli_exits_with_one_line_for_unsafe_secret(sandbox: RunningSandbox, tmp_path: Path) -> None:
    kubectl(sandbox.kubeconfig, HOME, "create", "namespace", NAMESPACE, check=False)
    put_secret(sandbox, "bad-cli", member_kubeconfig(sandbox, "c2", EXEC_USER), label="c2")
    config = secret_config(sandbox, tmp_path, {"c2": "bad-cli"})
    out = subprocess.run(
        [MESHFED, "plan", "--config", str(config),
         "--home-kubeconfig", str(sandbox.kubeconfig), "--home-context", HOME],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 1, out.stdout + out.stderr
    assert out.stderr.splitlines() == [
        "error: " + UNSAFE.format(name="bad-cli") + "users[0].user.exec runs a local command to "
        "obtain credentials; fix: mint a long-lived token for a service account and put it "
        "inline in user.token"
    ]

"""Members reached through labelled kubeconfig Secrets in the home cluster (c1), as the
least-privileged ServiceAccount of the chart's member mode (S6): federation works,
Secrets in the member are unreadable, a denied verb is reported without deletions or a crash,
and unlabelled or unsafe Secrets are refused by the CLI with the documented message."""

from __future__ import annotations

import base64
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from federator.core.config_parse import load_config
from federator.core.model import ClusterId, ServiceKey
from federator.errors import ConfigError, PermanentError
from federator.kube.clusters import ClusterRegistry, file_credentials
from federator.kube.resources import SECRETS
from federator.status import FORBIDDEN, RefusalCondition
from tests.helpers.chart import member_rbac
from tests.helpers.federator_harness import (
    FederatorThread,
    app_docs,
    apply,
    kubectl,
    service_entry,
    wait_for,
)
from tests.helpers.federator_members import (
    ACCOUNT,
    HOME,
    NAMESPACE,
    api_status,
    member_kubeconfig,
    prepare_members,
    put_secret,
    secret_config,
    secret_federator,
)
from tests.helpers.sandbox import RunningSandbox

MESHFED = str(Path(sys.executable).parent / "meshfed")


def _delete_app(sandbox: RunningSandbox, cluster: str, name: str) -> None:
    kubectl(
        sandbox.kubeconfig, cluster, "delete", "deployment,service", name,
        "--ignore-not-found", "--wait=false", check=False,
    )  # fmt: skip


# ---- tests
MEMBERS = ("c2", "c3")


@pytest.fixture(scope="module")
def secrets_federator(
    sandbox: RunningSandbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FederatorThread]:
    prepare_members(sandbox, MEMBERS)
    config_path = secret_config(
        sandbox, tmp_path_factory.mktemp("secrets"), {m: f"{m}-kubeconfig" for m in MEMBERS}
    )
    fed = secret_federator(load_config(config_path), home_kubeconfig=sandbox.kubeconfig)
    try:
        wait_for("federator ready", lambda: fed.status.ready, timeout=30)
        yield fed
    finally:
        fed.stop()


def test_federates_through_secrets_with_least_privilege(
    sandbox: RunningSandbox, secrets_federator: FederatorThread
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
                await secrets_federator.clients[ClusterId("c3")].get(SECRETS, NAMESPACE, "x")
            except PermanentError as exc:
                return exc.status or 0
            return 200

        assert secrets_federator.call(read_secret_as_federator()) == 403
        assert secrets_federator.metric("meshfed_federator_credential_reloads_total") == 0
    finally:
        _delete_app(sandbox, "c2", name)


def _role_without_istio_delete() -> list[dict[str, Any]]:
    docs = [d for d in member_rbac(NAMESPACE) if d["kind"] == "ClusterRole"]
    for rule in docs[0]["rules"]:
        if "networking.istio.io" in rule["apiGroups"]:
            rule["verbs"] = [v for v in rule["verbs"] if v != "delete"]
    return docs


def test_denied_delete_is_reported_without_deletion_or_crash(
    sandbox: RunningSandbox, secrets_federator: FederatorThread
) -> None:
    kc, gone, later = sandbox.kubeconfig, "sec-denied", "sec-after"
    fed = secrets_federator
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
        apply(kc, "c2", member_rbac(NAMESPACE))
        _delete_app(sandbox, "c3", later)
        _delete_app(sandbox, "c3", gone)
    wait_for("delete allowed again in c2", lambda: _may_delete_entries(sandbox, "c2"))
    fed.resync_all()  # one resync with delete allowed again prunes the leftover
    wait_for("queue idle", fed.idle)
    assert service_entry(kc, "c2", gone) is None
    assert not _refusals(fed, gone)  # cleared by the successful prune
    assert fed.metric("meshfed_federator_reconciles_total", {"result": "crash"}) == 0


def _refusals(fed: FederatorThread, name: str) -> list[RefusalCondition]:
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
    registry = ClusterRegistry(config, home=file_credentials(str(sandbox.kubeconfig), HOME))
    try:
        with pytest.raises(ConfigError) as refused:
            await registry.open()
    finally:
        await registry.aclose()
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

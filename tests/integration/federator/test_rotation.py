"""Credential rotation without a restart (R7): c1 through a kubeconfig file, c2 and c3 through
labelled Secrets in c1, all as the member ServiceAccount. A rotated token (the old one
revoked by re-creating the ServiceAccount) is used within 30 s and counted as one reload; a
source rewritten with identical content causes no reload; an unsafe new version is refused
and the old credentials stay in use."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from federator.core.config_parse import load_config
from federator.core.model import ClusterId
from federator.kube.credentials_watch import RotationSettings
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
    NAMESPACE,
    api_status,
    member_kubeconfig,
    mint_token,
    prepare_members,
    put_secret,
    secret_config,
    secret_federator,
)
from tests.helpers.sandbox import RunningSandbox

ROTATION = RotationSettings(secret_poll_seconds=2.0, file_poll_seconds=1.0)
RELOADS = "meshfed_federator_credential_reloads_total"
FAILURES = "meshfed_federator_credential_reload_failures_total"


class Rig:
    """The federator under test plus what the tests need to rotate its credentials."""

    def __init__(self, sandbox: RunningSandbox, fed: FederatorThread, c1_file: Path) -> None:
        self.sandbox, self.fed, self.c1_file = sandbox, fed, c1_file

    def reloads(self, cluster: str) -> float:
        return self.fed.metric(RELOADS, {"cluster": cluster})

    def failures(self, cluster: str) -> float:
        return self.fed.metric(FAILURES, {"cluster": cluster})

    def wait_checks(self, cluster: str, rounds: int = 2) -> None:
        """Wait until the watcher re-read ``cluster``'s source ``rounds`` more times."""
        watcher = self.fed.watcher
        assert watcher is not None
        start = watcher.polls[ClusterId(cluster)]
        wait_for(
            f"{rounds} credential checks of {cluster}",
            lambda: watcher.polls[ClusterId(cluster)] >= start + rounds,
            timeout=4 * rounds * ROTATION.secret_poll_seconds,
        )

    def revoke_tokens(self, cluster: str) -> str:
        """Re-create the member ServiceAccount (its old tokens stop working); a new token."""
        kc = self.sandbox.kubeconfig
        kubectl(kc, cluster, "delete", "serviceaccount", ACCOUNT, "-n", NAMESPACE)
        apply(kc, cluster, member_rbac(NAMESPACE))
        return mint_token(self.sandbox, cluster)

    def exported(self, source: str, name: str, target: str) -> None:
        """Export ``name`` from ``source`` and wait for its ServiceEntry in ``target``."""
        kc = self.sandbox.kubeconfig
        apply(kc, source, app_docs(name, replicas=1))
        wait_for(f"{name} in {target}", lambda: service_entry(kc, target, name), timeout=30)


def _secret_kubeconfig(sandbox: RunningSandbox, name: str) -> str:
    out = kubectl(sandbox.kubeconfig, "c1", "get", "secret", name, "-n", NAMESPACE, "-o", "yaml")
    data: str = yaml.safe_load(out.stdout)["data"]["kubeconfig"]
    return data


@pytest.fixture(scope="module")
def rig(sandbox: RunningSandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    tmp = tmp_path_factory.mktemp("rotation")
    prepare_members(sandbox, ("c1", "c2", "c3"))  # c1's Secret is made but not used
    c1_file = tmp / "c1.kubeconfig"
    c1_file.write_text(
        yaml.safe_dump(member_kubeconfig(sandbox, "c1", {"token": mint_token(sandbox, "c1")}))
    )
    c1_file.chmod(0o600)
    config = secret_config(sandbox, tmp, {"c2": "c2-kubeconfig", "c3": "c3-kubeconfig"})
    doc = yaml.safe_load(config.read_text())
    doc["clusters"][0]["kubeconfig"] = {"path": str(c1_file), "context": "c1"}
    config.write_text(yaml.safe_dump(doc))
    fed = secret_federator(
        load_config(config), home_kubeconfig=sandbox.kubeconfig, rotation=ROTATION
    )
    try:
        wait_for("federator ready", lambda: fed.status.ready, timeout=30)
        yield Rig(sandbox, fed, c1_file)
    finally:
        fed.stop()
        for name in ("rot-unchanged", "rot-secret", "rot-secret-2", "rot-file", "rot-unsafe"):
            for ctx in ("c1", "c2", "c3"):
                kubectl(sandbox.kubeconfig, ctx, "delete", "deployment,service", name,
                        "--ignore-not-found", "--wait=false", check=False)  # fmt: skip


def test_unchanged_sources_cause_no_reload(rig: Rig) -> None:
    sb = rig.sandbox
    current = _secret_kubeconfig(sb, "c2-kubeconfig")
    kubectl(sb.kubeconfig, "c1", "annotate", "secret", "c2-kubeconfig", "-n", NAMESPACE,
            f"touched={time.time_ns()}", "--overwrite")  # fmt: skip
    assert _secret_kubeconfig(sb, "c2-kubeconfig") == current
    rig.c1_file.write_bytes(rig.c1_file.read_bytes())  # same bytes, new mtime
    os.utime(rig.c1_file)
    rig.wait_checks("c2")
    rig.wait_checks("c1")
    assert (rig.reloads("c1"), rig.reloads("c2"), rig.failures("c2")) == (0, 0, 0)
    rig.exported("c3", "rot-unchanged", "c2")


def test_rotated_secret_token_is_used_within_30s(rig: Rig) -> None:
    sb = rig.sandbox
    old = yaml.safe_load(base64.b64decode(_secret_kubeconfig(sb, "c2-kubeconfig")))["users"][0][
        "user"
    ]["token"]
    new = rig.revoke_tokens("c2")
    wait_for("old token revoked", lambda: api_status(sb, "c2", old, "/api/v1/services") == 401)
    put_secret(sb, "c2-kubeconfig", member_kubeconfig(sb, "c2", {"token": new}), label="c2")
    # Writes into c2 and reads from c2 both need the new token from here on.
    rig.exported("c3", "rot-secret", "c2")
    wait_for("reload counted", lambda: rig.reloads("c2") == 1)
    rig.exported("c2", "rot-secret-2", "c3")
    kubectl(sb.kubeconfig, "c2", "delete", "deployment,service", "rot-secret-2",
            "--wait=false")  # fmt: skip
    assert rig.reloads("c3") == 0 and rig.failures("c2") == 0


def test_rotated_file_token_is_used(rig: Rig) -> None:
    sb = rig.sandbox
    new = rig.revoke_tokens("c1")
    rig.c1_file.write_text(yaml.safe_dump(member_kubeconfig(sb, "c1", {"token": new})))
    rig.exported("c2", "rot-file", "c1")
    wait_for("reload counted", lambda: rig.reloads("c1") == 1)
    assert rig.failures("c1") == 0


def test_unsafe_new_version_is_refused_and_old_credentials_kept(rig: Rig) -> None:
    sb = rig.sandbox
    current = _secret_kubeconfig(sb, "c3-kubeconfig")
    exec_user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "steal"}}
    put_secret(sb, "c3-kubeconfig", member_kubeconfig(sb, "c3", exec_user), label="c3")
    wait_for("refusal counted", lambda: rig.failures("c3") == 1)
    rig.wait_checks("c3")  # refused once, not once per poll
    assert rig.failures("c3") == 1 and rig.reloads("c3") == 0
    rig.exported("c1", "rot-unsafe", "c3")  # the old credentials still work
    kubectl(sb.kubeconfig, "c1", "patch", "secret", "c3-kubeconfig", "-n", NAMESPACE,
            "-p", f'{{"data":{{"kubeconfig":"{current}"}}}}')  # fmt: skip
    rig.wait_checks("c3")  # back to the content in use: nothing to reload
    assert rig.reloads("c3") == 0

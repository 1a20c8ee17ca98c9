"""The federator as the chart deploys it, in in-cluster mode, over the shared sandbox.

The chart is installed with ``helm install`` in home mode in c1 and in member mode in c1..c3;
the member ServiceAccount's TokenRequest tokens become the member kubeconfig Secrets (two
created beforehand and labelled, one given inline in the values so the chart creates it).
Then ``meshfed federate`` runs on the host exactly as in the chart's Pod, only without a
kubelet: the rendered ``federation.yaml`` from the installed ConfigMap, the chart's home
ServiceAccount token and the cluster CA in a directory (``MESHFED_SERVICEACCOUNT_DIR`` in place
of /var/run/secrets/kubernetes.io/serviceaccount), ``KUBERNETES_SERVICE_HOST/PORT`` pointing at
c1. It must lead (the Lease RBAC), federate an app exported in c2 into c1 and c3 (the member
RBAC), and the RBAC must be least: ``kubectl auth can-i`` denies what meshfed never does.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from federator.core.model import CLUSTER_SECRET_LABEL
from tests.helpers.chart import CHART, MEMBER_ACCOUNT, helm, value_args
from tests.helpers.federator_harness import app_docs, apply, kubectl, service_entry, wait_for
from tests.helpers.federator_members import cluster_entry, member_kubeconfig
from tests.helpers.processes import free_port, stop, wait_http_ok
from tests.helpers.sandbox import RunningSandbox

MESHFED = str(Path(sys.executable).parent / "meshfed")
NAMESPACE, HOME, CLUSTERS = "meshfed-incluster", "c1", ("c1", "c2", "c3")
RELEASE, MEMBER_RELEASE = "incluster", "incluster-member"
HOME_ACCOUNT = "incluster-meshfed-federator"
"""The chart's federator ServiceAccount for release ``incluster`` (<release>-meshfed-federator)."""
LEASE = "incluster-federator"
DRILL_MEMBER = "c3"
"""The one member installed with ``member.drills.enabled`` (VirtualServices); the home release
has ``federator.drills.enabled`` (the drill controller's rights)."""


def _member_kubeconfig(sandbox: RunningSandbox, cluster: str, token: str) -> str:
    return yaml.safe_dump(member_kubeconfig(sandbox, cluster, {"token": token}), sort_keys=True)


def _token(sandbox: RunningSandbox, cluster: str, account: str) -> str:
    out = kubectl(
        sandbox.kubeconfig, cluster, "create", "token", account, "-n", NAMESPACE, "--duration=1h"
    )
    return out.stdout.strip()


def _home_values(sandbox: RunningSandbox, inline: dict[str, str]) -> dict[str, Any]:
    """The chart values: every sandbox cluster as a member, ``inline`` ({cluster: kubeconfig})
    given inline, the others through existing Secrets; free host ports; no gateway probes (no
    gateway listens here); collectors off (the install test covers them)."""
    sandbox_doc = yaml.safe_load((sandbox.directory / "federation.yaml").read_text())
    clusters = []
    for entry in sandbox_doc["clusters"]:
        cluster = {k: v for k, v in entry.items() if k != "kubeconfig"}
        if entry["name"] in inline:
            cluster["kubeconfig"] = inline[entry["name"]]
        else:
            cluster["secret"] = {"name": f"{entry['name']}-member", "key": "config"}
        clusters.append(cluster)
    return {
        "federator": {
            "clusters": clusters,
            "leaderElection": {"leaseName": LEASE},
            "drills": {"enabled": True},
            "ports": {"http": free_port(), "grpc": free_port()},
            "settings": {
                "failover": sandbox_doc["failover"],
                "gatewayProbe": {"enabled": False},
                "resyncPeriod": "30s",
            },
        },
        "collectors": {"enabled": False},
    }


def _put_secret(sandbox: RunningSandbox, cluster: str, kubeconfig: str) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": f"{cluster}-member",
            "namespace": NAMESPACE,
            "labels": {CLUSTER_SECRET_LABEL: cluster},
        },
        "data": {"config": base64.b64encode(kubeconfig.encode()).decode()},
    }
    apply(sandbox.kubeconfig, HOME, [secret])


class InClusterFederator:
    """``meshfed federate`` on the host, configured and authenticated as the chart's Pod."""

    def __init__(self, sandbox: RunningSandbox, directory: Path) -> None:
        cm = yaml.safe_load(
            kubectl(
                sandbox.kubeconfig, HOME, "get", "configmap", f"{RELEASE}-meshfed-federator",
                "-n", NAMESPACE, "-o", "yaml",
            ).stdout
        )  # fmt: skip
        self.config = yaml.safe_load(cm["data"]["federation.yaml"])
        config_dir = directory / "config"
        config_dir.mkdir()
        (config_dir / "federation.yaml").write_text(cm["data"]["federation.yaml"])
        account = directory / "serviceaccount"
        account.mkdir()
        (account / "token").write_text(_token(sandbox, HOME, HOME_ACCOUNT))
        entry = cluster_entry(sandbox, HOME)
        (account / "ca.crt").write_bytes(base64.b64decode(entry["certificate-authority-data"]))
        host, _, port = entry["server"].removeprefix("https://").rpartition(":")
        env = {
            **os.environ,
            "KUBERNETES_SERVICE_HOST": host,
            "KUBERNETES_SERVICE_PORT": port,
            "MESHFED_SERVICEACCOUNT_DIR": str(account),
        }
        self.http = "127.0.0.1:" + self.config["listen"]["http"].rpartition(":")[2]
        self.log = directory / "federate.log"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [MESHFED, "federate", "--config", str(config_dir / "federation.yaml")],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def metric(self, name: str) -> float | None:
        text = httpx.get(f"http://{self.http}/metrics", timeout=2).text
        for line in text.splitlines():
            if line.startswith(f"{name} "):
                return float(line.split()[1])
        return None


@pytest.fixture(scope="module")
def installed(sandbox: RunningSandbox) -> Iterator[RunningSandbox]:
    """The member release in c1..c3, the member Secrets, the home release in c1."""
    kc = sandbox.kubeconfig
    try:
        kubeconfigs = {}
        for cluster in CLUSTERS:
            drills = f"--set=member.drills.enabled={str(cluster == DRILL_MEMBER).lower()}"
            helm(
                "install", MEMBER_RELEASE, str(CHART), f"--namespace={NAMESPACE}",
                "--create-namespace", "--set=mode=member", drills, "--wait", "--timeout=60s",
                "--skip-crds",  # as docs/install.md says: members need no Drill CRD
                kubeconfig=kc, context=cluster,
            )  # fmt: skip
            token = _token(sandbox, cluster, MEMBER_ACCOUNT)
            kubeconfigs[cluster] = _member_kubeconfig(sandbox, cluster, token)
        for cluster in ("c1", "c2"):
            _put_secret(sandbox, cluster, kubeconfigs[cluster])
        values = _home_values(sandbox, inline={"c3": kubeconfigs["c3"]})
        helm(
            "install", RELEASE, str(CHART), f"--namespace={NAMESPACE}", "--wait",
            "--timeout=90s", *value_args(values=values), kubeconfig=kc, context=HOME,
        )  # fmt: skip
        yield sandbox
    finally:
        for cluster in CLUSTERS:
            for release in (RELEASE, MEMBER_RELEASE):
                helm(
                    "uninstall", release, f"--namespace={NAMESPACE}", "--ignore-not-found",
                    kubeconfig=kc, context=cluster, check=False,
                )  # fmt: skip
            kubectl(kc, cluster, "delete", "namespace", NAMESPACE, "--wait=false", check=False)


@pytest.fixture(scope="module")
def federator(
    installed: RunningSandbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InClusterFederator]:
    fed = InClusterFederator(installed, tmp_path_factory.mktemp("incluster"))
    try:
        wait_http_ok(f"http://{fed.http}/readyz", fed.proc, what="federate", log=fed.log)
        yield fed
    finally:
        stop(fed.proc, timeout_s=20)


def test_in_cluster_federator_leads_and_federates(
    sandbox: RunningSandbox, federator: InClusterFederator
) -> None:
    kc, name = sandbox.kubeconfig, "incluster-app"
    assert federator.config["namespace"] == NAMESPACE
    wait_for(
        "leading (the chart's Lease RBAC)", lambda: federator.metric("meshfed_federator_leader")
    )
    holder = kubectl(
        kc, HOME, "get", "lease", LEASE, "-n", NAMESPACE, "-o", "jsonpath={.spec.holderIdentity}"
    ).stdout
    assert holder, "the Lease has no holder"
    apply(kc, "c2", app_docs(name, replicas=1))
    try:
        for ctx in ("c1", "c3"):
            wait_for(f"ServiceEntry in {ctx}", lambda c=ctx: service_entry(kc, c, name))  # type: ignore[misc]
    finally:
        kubectl(
            kc, "c2", "delete", "deployment,service", name, "--ignore-not-found", "--wait=false",
            check=False,
        )  # fmt: skip
    wait_for("ServiceEntry pruned in c3", lambda: service_entry(kc, "c3", name) is None)
    assert federator.proc.poll() is None, federator.log.read_text()[-2000:]


MEMBER = f"system:serviceaccount:{NAMESPACE}:{MEMBER_ACCOUNT}"
FEDERATOR = f"system:serviceaccount:{NAMESPACE}:{HOME_ACCOUNT}"


SE, VS = "serviceentries.networking.istio.io", "virtualservices.networking.istio.io"
SIDECARS, SLICES = "sidecars.networking.istio.io", "endpointslices.discovery.k8s.io"
AUTHZ = "authorizationpolicies.security.istio.io"
NS = NAMESPACE


@pytest.mark.parametrize(
    ("cluster", "user", "verb", "resource", "namespace", "allowed"),
    [
        pytest.param("c2", MEMBER, "create", SE, "default", True, id="member-writes-entries"),
        pytest.param("c2", MEMBER, "watch", SLICES, "", True, id="member-watches-slices"),
        pytest.param("c2", MEMBER, "create", "events", "default", True, id="member-events"),
        pytest.param("c2", MEMBER, "get", "secrets", NS, False, id="member-reads-no-secrets"),
        pytest.param("c2", MEMBER, "list", "secrets", "", False, id="member-lists-no-secrets"),
        pytest.param("c2", MEMBER, "create", VS, "default", False, id="member-no-vs-sans-drills"),
        pytest.param("c3", MEMBER, "patch", VS, "default", True, id="member-vs-with-drills"),
        pytest.param("c3", MEMBER, "get", "secrets", NS, False, id="drill-member-no-secrets"),
        pytest.param(
            "c2", MEMBER, "create", SIDECARS, "default", False, id="member-no-sidecars"
        ),
        pytest.param("c2", MEMBER, "create", AUTHZ, "default", False, id="member-no-authz"),
        pytest.param("c2", MEMBER, "update", SE, "default", False, id="member-no-update"),
        pytest.param("c2", MEMBER, "delete", "services", "default", False, id="member-ro-svc"),
        pytest.param("c2", MEMBER, "watch", "pods", "", True, id="member-watches-pods"),
        pytest.param("c2", MEMBER, "get", "pods/x", "default", False, id="member-reads-no-pod"),
        pytest.param("c2", MEMBER, "create", "pods/exec", "default", False, id="member-no-exec"),
        pytest.param(
            "c1", FEDERATOR, "get", "secrets/c1-member", NS, True, id="federator-its-secrets"
        ),
        pytest.param("c1", FEDERATOR, "get", "secrets/x", NS, False, id="federator-one-secret"),
        pytest.param("c1", FEDERATOR, "list", "secrets", NS, False, id="federator-no-secret-list"),
        pytest.param(
            "c1", FEDERATOR, "get", "secrets/c1-member", "default", False, id="federator-ns-only"
        ),
        pytest.param("c1", FEDERATOR, "update", f"leases/{LEASE}", NS, True, id="federator-lease"),
        pytest.param("c1", FEDERATOR, "update", "leases/x", NS, False, id="federator-one-lease"),
        pytest.param("c1", FEDERATOR, "create", SE, "default", False, id="federator-no-istio"),
    ],
)  # fmt: skip
def test_rbac_is_least(
    installed: RunningSandbox,
    cluster: str,
    user: str,
    verb: str,
    resource: str,
    namespace: str,
    allowed: bool,
) -> None:
    scope = [f"--namespace={namespace}"] if namespace else ["--all-namespaces"]
    out = kubectl(
        installed.kubeconfig, cluster, "auth", "can-i", verb, resource, *scope, f"--as={user}",
        check=False,
    )  # fmt: skip
    assert out.stdout.strip() == ("yes" if allowed else "no"), out.stdout + out.stderr


DRILLS, FREEZE = "drills.meshfed.io", "configmaps/meshfed-drills-freeze"


@pytest.mark.parametrize(
    ("verb", "resource", "subresource", "namespace", "allowed"),
    [
        pytest.param("watch", DRILLS, "", NS, True, id="watches-drills"),
        pytest.param("update", DRILLS, "", NS, True, id="updates-drills"),
        pytest.param("patch", DRILLS, "status", NS, True, id="patches-status"),
        pytest.param("update", DRILLS, "status", NS, True, id="updates-status"),
        pytest.param("create", DRILLS, "", NS, False, id="starts-no-drill"),
        pytest.param("delete", DRILLS, "", NS, False, id="deletes-no-drill"),
        pytest.param("list", DRILLS, "", "default", False, id="drills-ns-only"),
        pytest.param("get", FREEZE, "", NS, True, id="reads-the-freeze"),
        pytest.param("watch", FREEZE, "", NS, True, id="watches-the-freeze"),
        pytest.param("delete", FREEZE, "", NS, False, id="lifts-no-freeze"),
        pytest.param("create", "configmaps", "", NS, False, id="creates-no-configmap"),
        pytest.param("list", "configmaps", "", NS, False, id="lists-no-other-configmap"),
        pytest.param("get", "configmaps/other", "", NS, False, id="reads-no-other-configmap"),
    ],
)  # fmt: skip
def test_federator_has_the_drill_controllers_rights_only(
    installed: RunningSandbox,
    verb: str,
    resource: str,
    subresource: str,
    namespace: str,
    allowed: bool,
) -> None:
    """federator.drills.enabled: read and update Drills and their status, read the freeze;
    starting a drill or lifting a freeze stays a human's right."""
    sub = [f"--subresource={subresource}"] if subresource else []
    out = kubectl(
        installed.kubeconfig, HOME, "auth", "can-i", verb, resource, *sub,
        f"--namespace={namespace}", f"--as={FEDERATOR}", check=False,
    )  # fmt: skip
    assert out.stdout.strip() == ("yes" if allowed else "no"), out.stdout + out.stderr


def test_the_chart_installed_the_drill_crd(installed: RunningSandbox) -> None:
    crd = kubectl(installed.kubeconfig, HOME, "get", "crd", DRILLS, "-o", "name").stdout
    assert crd.strip() == f"customresourcedefinition.apiextensions.k8s.io/{DRILLS}"

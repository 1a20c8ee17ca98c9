"""The meshfed chart against real tools: ``helm lint --strict``, values.schema.json refusing
bad values by name, every value set of ``ci/`` rendered and applied with ``kubectl apply
--dry-run=server --validate=strict`` to a sandbox apiserver (the real object schemas, RBAC
escalation checks, admission), the rendered config files accepted by meshfed's own config
loaders, and ``helm install`` / ``upgrade`` / ``uninstall`` into the sandbox."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from federator.core.config_parse import load_config
from tests.helpers.chart import CHART, CI_VALUES, config_file, find, helm, render, value_args
from tests.helpers.federator_harness import apply, get_json, kubectl
from tests.helpers.paths import REPO_ROOT
from tests.helpers.sandbox import RunningSandbox

MESHFED = str(Path(sys.executable).parent / "meshfed")
VALUE_SETS = sorted(CI_VALUES.glob("*-values.yaml"))
NAMESPACE = "meshfed-chart"


def test_chart_crd_is_the_federators() -> None:
    """crds/ is a copy (Helm reads CRDs only from inside the chart): byte for byte the Drill
    CRD the federator ships and ``meshfed drill`` points at."""
    [copy] = sorted((CHART / "crds").iterdir())
    assert copy.read_bytes() == (REPO_ROOT / "federator" / "drills_crd.yaml").read_bytes(), (
        f"{copy} differs from federator/drills_crd.yaml: cp federator/drills_crd.yaml {copy}"
    )


@pytest.mark.parametrize("values", VALUE_SETS, ids=lambda p: p.name)
def test_lint_strict(values: Path) -> None:
    out = helm("lint", "--strict", str(CHART), f"--values={values}", check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 chart(s) failed" in out.stdout


FED: dict[str, Any] = {"clusters": [{"name": "c1"}]}
HOME = {"federator": FED}


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        pytest.param({}, "at '/federator/clusters': minItems: got 0, want 1", id="no-clusters"),
        pytest.param({"mode": "remote"}, "at '/mode': value must be one of", id="unknown-mode"),
        pytest.param({"replica": 2}, "properties 'replica' not allowed", id="unknown-key"),
        pytest.param(
            {"federator": {"clusters": [{"name": "C_1"}]}},
            "at '/federator/clusters/0/name': 'C_1' does not match pattern", id="bad-cluster-name",
        ),
        pytest.param(
            {"federator": {"clusters": [{"name": "c", "kubeconfig": "x", "secret": {}}]}},
            "at '/federator/clusters/0': 'not' failed", id="kubeconfig-and-secret",
        ),
        pytest.param(
            {"federator": {**FED, "replicas": 2, "leaderElection": {"enabled": False}}},
            "at '/federator/leaderElection/enabled': value must be true", id="replicas-no-lease",
        ),
        pytest.param(
            {**HOME, "collectors": {"replicas": 2}},
            "at '/collectors/replicas': maximum: got 2, want 1", id="embedded-redis-replicas",
        ),
        pytest.param(
            {**HOME, "collectors": {"redis": {"mode": "external"}}},
            "at '/collectors/redis/external/urlSecret/name': minLength", id="redis-no-url",
        ),
        pytest.param(
            {**HOME, "collectors": {"ports": {"statsd": 70000}}},
            "at '/collectors/ports/statsd': maximum: got 70,000, want 65,535", id="port-range",
        ),
        pytest.param(
            {"federator": {**FED, "settings": {"namespace": "x"}}},
            "at '/federator/settings/namespace': false schema", id="settings-override-chart-owned",
        ),
        pytest.param(
            {"federator": {**FED, "http": {"tls": {"secretName": "t", "clientCA": True}}}},
            "properties 'clientCA' not allowed", id="metrics-mtls-breaks-probes",
        ),
        pytest.param(
            {"federator": {**FED, "settings": {"drills": {"enabled": True}}}},
            "at '/federator/settings/drills': 'not' failed", id="drills-only-with-rbac",
        ),
        pytest.param(
            {"federator": {**FED, "settings": {"http": {"protectProbes": True}}}},
            "at '/federator/settings/http': false schema", id="settings-http-chart-owned",
        ),
    ],
)  # fmt: skip
def test_schema_refuses_bad_values(values: dict[str, Any], expected: str) -> None:
    out = helm("template", "meshfed", str(CHART), *value_args(values=values), check=False)
    assert out.returncode != 0
    assert not out.stdout
    assert expected in out.stderr, out.stderr


def test_metrics_token_and_tls_reach_the_federator() -> None:
    """federator.http: the config names the mounted Secrets, the probes stay open on HTTPS."""
    docs = render([CI_VALUES / "home-drills-values.yaml"])
    http = config_file(docs, "meshfed-federator", "federation.yaml")["http"]
    assert http == {
        "tokenFile": "/etc/meshfed/http-token/token",
        "tls": {
            "certFile": "/etc/meshfed/http-tls/tls.crt",
            "keyFile": "/etc/meshfed/http-tls/tls.key",
        },
    }
    pod = find(docs, "Deployment", "meshfed-federator")["spec"]["template"]["spec"]
    [container] = pod["containers"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["scheme"] == "HTTPS"
        assert "httpHeaders" not in container[probe]["httpGet"]
    secrets = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    assert secrets == {"http-tls": "meshfed-metrics-tls", "http-token": "meshfed-metrics-token"}


def test_collectors_with_mutual_tls_are_probed_on_a_plain_probe_port(tmp_path: Path) -> None:
    """collectors.http with a client CA: the kubelet (no client certificate) probes
    /-/healthy and /-/ready on the probe port in plain HTTP, so a store that cannot recover
    (503) does restart the pod; the rendered config is what ``meshfed collect`` accepts."""
    mtls = {"collectors": {"http": {"tls": {"secretName": "c-tls", "clientCA": True}}}}
    docs = render([CI_VALUES / "home-values.yaml"], mtls)
    http = config_file(docs, "meshfed-collectors", "collectors.yaml")["http"]
    assert http["tls_client_ca_file"] == "/etc/meshfed/http-tls/ca.crt"
    assert http["probe_listen"] == "0.0.0.0:9202"
    pod = find(docs, "Deployment", "meshfed-collectors")["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert {"name": "probes", "containerPort": 9202, "protocol": "TCP"} in container["ports"]
    for probe, path in (("readinessProbe", "/-/ready"), ("livenessProbe", "/-/healthy")):
        get = container[probe]["httpGet"]
        assert (get["path"], get["port"], get["scheme"]) == (path, "probes", "HTTP"), probe
    _check_collectors(docs, tmp_path)


def test_drills_run_where_the_role_grants_them() -> None:
    """federator.drills.enabled turns the controller on in the release namespace, the one the
    Role's drill rules are in; without it the Role has no drill rule."""
    on = render([CI_VALUES / "home-drills-values.yaml"], namespace="ops")
    drills = config_file(on, "meshfed-federator", "federation.yaml")["drills"]
    assert drills == {"enabled": True, "namespace": "ops"}
    role = find(on, "Role", "meshfed-federator")
    assert role["metadata"]["namespace"] == "ops"
    groups = [r for r in role["rules"] if r["apiGroups"] == ["meshfed.io"]]
    assert {tuple(r["resources"]) for r in groups} == {("drills",), ("drills/status",)}
    off = render([CI_VALUES / "home-values.yaml"])
    assert "drills" not in config_file(off, "meshfed-federator", "federation.yaml")
    rules = find(off, "Role", "meshfed-federator")["rules"]
    assert not [
        r for r in rules if "meshfed.io" in r["apiGroups"] or "configmaps" in r["resources"]
    ]


def _existing_files(doc: Any, root: Path) -> Any:
    """``doc`` with every /etc/meshfed/... path replaced by a file under ``root`` (where a Pod
    has the Secrets mounted)."""
    if isinstance(doc, dict):
        return {k: _existing_files(v, root) for k, v in doc.items()}
    if isinstance(doc, str) and doc.startswith("/etc/meshfed/"):
        path = root / doc.removeprefix("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("not-a-real-token\n")
        return str(path)
    return doc


@pytest.mark.parametrize("values", VALUE_SETS, ids=lambda p: p.name)
def test_rendered_configs_load(values: Path, tmp_path: Path) -> None:
    """What the chart writes into its ConfigMaps is what meshfed itself accepts."""
    docs = render([values])
    kinds = {d["kind"] for d in docs}
    if "Deployment" not in kinds:  # mode=member: RBAC only
        assert kinds <= {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Secret"}
        return
    names = {d["metadata"]["name"] for d in docs if d["kind"] == "ConfigMap"}
    if "meshfed-federator" in names:
        federation = config_file(docs, "meshfed-federator", "federation.yaml")
        path = tmp_path / "federation.yaml"
        path.write_text(yaml.safe_dump(_existing_files(federation, tmp_path)))
        config = load_config(path)
        assert config.namespace == "meshfed-system"
        assert [c.secret.name for c in config.clusters if c.secret] == [
            c["secret"]["name"] for c in federation["clusters"]
        ]
    if "meshfed-collectors" in names:
        _check_collectors(docs, tmp_path)


def _check_collectors(docs: list[dict[str, Any]], tmp_path: Path) -> None:
    """``meshfed collect --check`` with the Deployment's own arguments and environment (a
    Secret's value stands in for each ``secretKeyRef``)."""
    collectors = config_file(docs, "meshfed-collectors", "collectors.yaml")
    path = tmp_path / "collectors.yaml"
    path.write_text(yaml.safe_dump(_existing_files(collectors, tmp_path)))
    deployment = find(docs, "Deployment", "meshfed-collectors")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: "rediss+cluster://meshfed:pw@redis-0:6379" for e in container.get("env", [])}
    args = []
    for raw in container["args"]:
        arg = raw
        for name, value in env.items():
            arg = arg.replace(f"$({name})", value)
        args.append(f"--config={path}" if arg.startswith("--config=") else arg)
    out = subprocess.run(
        [MESHFED, *args, "--check"], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "configuration is valid" in out.stdout


@pytest.mark.parametrize(
    ("values", "strategy", "election"),
    [
        pytest.param("home-values.yaml", "RollingUpdate", True, id="elected-replicas-surge"),
        pytest.param("one-replica-values.yaml", "Recreate", False, id="lone-writer-recreated"),
    ],
)
def test_never_two_writers(values: str, strategy: str, election: bool) -> None:
    """A rollout may add a pod only when a Lease keeps the extra one from writing."""
    docs = render([CI_VALUES / values])
    deployment = find(docs, "Deployment", "meshfed-federator")
    assert deployment["spec"]["strategy"]["type"] == strategy
    config = config_file(docs, "meshfed-federator", "federation.yaml")
    assert config["leaderElection"]["enabled"] is election


@pytest.fixture(scope="module")
def chart_namespace(sandbox: RunningSandbox) -> Iterator[RunningSandbox]:
    for ctx in ("c1", "c2"):
        kubectl(sandbox.kubeconfig, ctx, "create", "namespace", NAMESPACE, check=False)
    try:
        yield sandbox
    finally:
        for ctx in ("c1", "c2"):
            kubectl(
                sandbox.kubeconfig,
                ctx,
                "delete",
                "namespace",
                NAMESPACE,
                "--wait=false",
                check=False,
            )


@pytest.mark.parametrize("values", VALUE_SETS, ids=lambda p: p.name)
def test_server_dry_run(chart_namespace: RunningSandbox, values: Path) -> None:
    docs = render([values], namespace=NAMESPACE)
    context = "c2" if yaml.safe_load(values.read_text()).get("mode") == "member" else "c1"
    out = kubectl(
        chart_namespace.kubeconfig, context, "apply", "--dry-run=server", "--validate=strict",
        "-f", "-", stdin=yaml.safe_dump_all(docs), check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("(server dry run)") == len(docs), out.stdout


def test_server_dry_run_catches_a_bad_object(chart_namespace: RunningSandbox) -> None:
    """The check above can fail: an unknown field in a rendered object is refused."""
    docs = render([CI_VALUES / "home-values.yaml"], namespace=NAMESPACE)
    [pdb] = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    pdb["spec"]["minAvailible"] = 1
    out = kubectl(
        chart_namespace.kubeconfig, "c1", "apply", "--dry-run=server", "--validate=strict",
        "-f", "-", stdin=yaml.safe_dump(pdb), check=False,
    )  # fmt: skip
    assert out.returncode != 0
    assert 'unknown field "spec.minAvailible"' in out.stderr


def _volume(size: str) -> dict[str, Any]:
    """A PersistentVolume the embedded Redis's claim binds to (the sandbox has no provisioner)."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": f"{NAMESPACE}-redis"},
        "spec": {
            "capacity": {"storage": size},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": "",
            "hostPath": {"path": f"/tmp/{NAMESPACE}-redis"},
        },
    }


def test_install_upgrade_uninstall(chart_namespace: RunningSandbox) -> None:
    kc, home_values = chart_namespace.kubeconfig, CI_VALUES / "home-values.yaml"
    apply(kc, "c1", [_volume("8Gi")])
    common = ("--namespace", NAMESPACE, "--wait", "--timeout=90s")
    try:
        helm(
            "install", "meshfed", str(CHART), *common, f"--values={home_values}",
            kubeconfig=kc, context="c1",
        )  # fmt: skip
        deployments = get_json(kc, "c1", "deployments", "-n", NAMESPACE)
        ready = {
            d["metadata"]["name"]: d["status"].get("readyReplicas") for d in deployments["items"]
        }
        assert ready == {"meshfed-federator": 2, "meshfed-collectors": 1}
        claim = get_json(kc, "c1", "pvc", "meshfed-collectors-redis", "-n", NAMESPACE)
        assert claim["status"]["phase"] == "Bound"

        helm(
            "upgrade", "meshfed", str(CHART), *common, f"--values={home_values}",
            *value_args(values={"collectors": {"region": "z"}, "federator": {"replicas": 3}}),
            kubeconfig=kc, context="c1",
        )  # fmt: skip
        federator = get_json(kc, "c1", "deployment", "meshfed-federator", "-n", NAMESPACE)
        assert federator["status"]["readyReplicas"] == 3
        cm = get_json(kc, "c1", "configmap", "meshfed-collectors", "-n", NAMESPACE)
        assert yaml.safe_load(cm["data"]["collectors.yaml"])["resource"]["region"] == "z"
        history = json.loads(
            helm(
                "history", "meshfed", "-n", NAMESPACE, "-o", "json", kubeconfig=kc, context="c1"
            ).stdout
        )
        assert [r["revision"] for r in history] == [1, 2]

        helm("uninstall", "meshfed", "-n", NAMESPACE, "--wait", kubeconfig=kc, context="c1")
        left = get_json(
            kc, "c1", "deployments,services,configmaps,roles,rolebindings,networkpolicies,"
            "poddisruptionbudgets,persistentvolumeclaims", "-n", NAMESPACE,
            "-l", "app.kubernetes.io/instance=meshfed",
        )  # fmt: skip
        # The embedded Redis's claim is kept (helm.sh/resource-policy: keep); nothing else.
        assert [(o["kind"], o["metadata"]["name"]) for o in left["items"]] == [
            ("PersistentVolumeClaim", "meshfed-collectors-redis")
        ]
    finally:
        helm(
            "uninstall", "meshfed", "-n", NAMESPACE, "--ignore-not-found",
            kubeconfig=kc, context="c1", check=False,
        )  # fmt: skip
        kubectl(kc, "c1", "delete", "pvc", "--all", "-n", NAMESPACE, "--wait=false", check=False)
        kubectl(kc, "c1", "delete", "pv", f"{NAMESPACE}-redis", "--wait=false", check=False)

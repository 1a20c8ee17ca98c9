"""``meshfed drill`` as a real subprocess against the sandbox (c1 is the home cluster):
plan refusals (blast radius, freeze) and bad specs naming the field, the freeze ConfigMap,
``run --no-follow`` creating the Drill, ``halt`` patching it, ``status`` and ``report``
showing what the object holds."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from federator.core.drills.journal import Event, EventType, ExitReason, new_journal, record
from federator.core.drills.journal_codec import to_status
from federator.core.drills.parse import parse_drill
from federator.core.model import ClusterId
from tests.integration.drillctl.conftest import MESHFED, NAMESPACE, SERVICE, SERVICE_NS, Home

pytestmark = pytest.mark.timeout(420)  # the first test starts the sandbox

DRAIN_REGION_A: dict[str, Any] = {
    "apiVersion": "meshfed.io/v1alpha1",
    "kind": "Drill",
    "metadata": {"name": "lose-region-a"},
    "spec": {
        "services": [{"namespace": SERVICE_NS, "name": SERVICE}],
        "ttl": "5m",
        "steps": [{"name": "lose-a", "duration": "1m", "drain": {"regions": ["region-a"]}}],
    },
}
"""``rated`` runs in c1 (region-a) only: draining region-a leaves c3 (region-b) with none."""

ABORT_IN_C2: dict[str, Any] = {
    "apiVersion": "meshfed.io/v1alpha1",
    "kind": "Drill",
    "metadata": {"name": "abort-in-c2"},
    "spec": {
        "services": [{"namespace": SERVICE_NS, "name": SERVICE}],
        "scope": {"clusters": ["c2"]},
        "ttl": "5m",
        "steps": [
            {"name": "half-503", "duration": "1m", "abort": {"percentage": 50, "httpStatus": 503}}
        ],
        "abortWhen": [
            {"name": "errors", "expr": "sum(rate(istio_requests_total[30s])) > 1", "for": "5s"}
        ],
    },
}


def write(tmp_path: Path, doc: dict[str, Any], name: str = "drill.yaml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def changed(doc: dict[str, Any], **spec: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    out["spec"].update(spec)
    return out


def test_plan_refuses_a_blast_radius_and_allow_outage_lifts_it(home: Home, tmp_path: Path) -> None:
    refused = home.meshfed("plan", "-f", write(tmp_path, DRAIN_REGION_A), "-c", str(home.config))
    assert refused.returncode == 1, refused.stdout + refused.stderr
    text = refused.stdout
    assert "REFUSED (Outage)" in text
    assert (
        f"leaves {SERVICE_NS}/{SERVICE} with no reachable endpoint in cluster c3 (before: 2)"
        in (text)
    )
    assert "spec.allowOutage: true" in text
    assert f"{SERVICE_NS}/{SERVICE}: endpoints 2 -> 0" in text
    allowed = changed(DRAIN_REGION_A, allowOutage=True)
    ok = home.meshfed("plan", "-f", write(tmp_path, allowed), "-c", str(home.config))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "OK: the drill may run" in ok.stdout
    run = home.meshfed("run", "-f", write(tmp_path, DRAIN_REGION_A), "-c", str(home.config))
    assert run.returncode == 1 and "not created" in run.stderr
    assert home.kubectl("get", "drill", "-n", NAMESPACE, "lose-region-a", check=False).returncode


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        pytest.param(
            {"services": [{"namespace": "x", "name": "nope"}]},
            "spec.services[0]",
            id="unknown-service",
        ),
        pytest.param(
            {"scope": {"regions": ["mars"]}}, "spec.scope.regions[0]", id="unknown-region"
        ),
        pytest.param(
            {
                "steps": [
                    {"name": "s", "duration": "1m", "abort": {"percentage": 101, "httpStatus": 500}}
                ]
            },
            "spec.steps[0].abort.percentage",
            id="percentage-out-of-range",
        ),
        pytest.param(
            {"abortWhen": [{"name": "g", "expr": "rate(x[1m]"}]},
            "spec.abortWhen[0].expr",
            id="promql-does-not-parse",
        ),
    ],
)
def test_bad_specs_are_refused_naming_the_field(
    home: Home, tmp_path: Path, spec: dict[str, Any], field: str
) -> None:
    result = home.meshfed("plan", "-f", write(tmp_path, changed(ABORT_IN_C2, **spec)),
                          "-c", str(home.config))  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert field in result.stdout + result.stderr


def test_freeze_refuses_then_unfreeze_lifts(home: Home, tmp_path: Path) -> None:
    frozen = home.meshfed("freeze", "--reason", "incident 4711")
    assert frozen.returncode == 0, frozen.stderr
    cm = json.loads(
        home.kubectl(
            "get", "configmap", "-n", NAMESPACE, "meshfed-drills-freeze", "-o", "json"
        ).stdout
    )
    assert cm["data"]["reason"] == "incident 4711" and cm["data"]["frozenAt"].endswith("Z")
    try:
        plan = home.meshfed("plan", "-f", write(tmp_path, ABORT_IN_C2), "-c", str(home.config))
        assert plan.returncode == 1, plan.stdout + plan.stderr
        assert "REFUSED (Frozen)" in plan.stdout
    finally:
        thawed = home.meshfed("unfreeze")
    assert thawed.returncode == 0 and "unfrozen" in thawed.stdout
    gone = home.kubectl("get", "configmap", "-n", NAMESPACE, "meshfed-drills-freeze", check=False)
    assert gone.returncode != 0
    again = home.meshfed("unfreeze")
    assert again.returncode == 0 and "were not frozen" in again.stdout
    ok = home.meshfed("plan", "-f", write(tmp_path, ABORT_IN_C2), "-c", str(home.config))
    assert ok.returncode == 0, ok.stdout + ok.stderr


def _drill(home: Home, name: str) -> dict[str, Any]:
    out = home.kubectl("get", "drill", "-n", NAMESPACE, name, "-o", "json", "--show-managed-fields")
    return dict(json.loads(out.stdout))


def test_run_no_follow_creates_then_halt_patches_then_status_and_report(
    home: Home, tmp_path: Path
) -> None:
    doc = copy.deepcopy(ABORT_IN_C2)
    doc["metadata"]["name"] = "created-by-run"
    result = home.meshfed("run", "--no-follow", "-f", write(tmp_path, doc), "-c", str(home.config))
    assert result.returncode == 0, result.stdout + result.stderr
    try:
        obj = _drill(home, "created-by-run")
        assert obj["spec"]["steps"] == doc["spec"]["steps"]
        assert obj["spec"]["scope"] == {"clusters": ["c2"]}
        managers = {m["manager"] for m in obj["metadata"]["managedFields"]}
        assert "meshfed-drill-cli" in managers
        again = home.meshfed("run", "--no-follow", "-f", write(tmp_path, doc), "-c",
                             str(home.config))  # fmt: skip
        assert again.returncode == 1 and "already exists" in again.stderr

        listed = home.meshfed("status")
        assert listed.returncode == 0, listed.stderr
        assert "created-by-run" in listed.stdout and "(no status)" in listed.stdout

        halted = home.meshfed("halt", "created-by-run")
        assert halted.returncode == 0, halted.stderr
        obj = _drill(home, "created-by-run")
        assert obj["spec"]["halt"] is True
        assert obj["spec"]["steps"] == doc["spec"]["steps"], "halt must not drop other fields"
        managers = {m["manager"] for m in obj["metadata"]["managedFields"]}
        assert {"meshfed-drill-cli", "meshfed-drill-halt"} <= managers

        # What the controller writes (docs/drills.md's layout): a run stopped by the halt.
        spec = parse_drill(obj)
        journal = new_journal(spec.name, (ClusterId("c2"),))
        t = 1_700_000_000.0
        for event in (
            Event(EventType.STARTED, t),
            Event(EventType.PRECONDITIONS_PASSED, t + 0.1),
            Event(EventType.STEP_STARTED, t + 0.2, step=0),
            Event(EventType.STEP_APPLIED, t + 0.6, step=0, cluster=ClusterId("c2"), latency=0.4),
            Event(EventType.EXIT, t + 5, reason=ExitReason.HALT, message="spec.halt"),
            Event(EventType.ROLLBACK_APPLIED, t + 5.2, cluster=ClusterId("c2")),
            Event(EventType.VERIFIED, t + 5.5, holds=True),
        ):
            journal = record(journal, spec, event)
        status = json.dumps({"status": to_status(journal)})
        home.kubectl("patch", "drill", "-n", NAMESPACE, "created-by-run", "--subresource=status",
                     "--type=merge", "-p", status)  # fmt: skip

        one = home.meshfed("status", "created-by-run")
        assert one.returncode == 0, one.stderr
        for text in ("Aborted (Halted)", "verdict Inconclusive", "StepApplied", "0.400s",
                     "RollbackApplied", "Verified"):  # fmt: skip
            assert text in one.stdout, one.stdout

        for fmt in ("json", "md", "html"):
            out = tmp_path / f"report.{fmt}"
            made = home.meshfed("report", "created-by-run", "--format", fmt, "--out", str(out))
            assert made.returncode == 0, made.stderr
        body = json.loads((tmp_path / "report.json").read_text())
        assert (body["phase"], body["reason"], body["verdict"]) == (
            "Aborted", "Halted", "Inconclusive",
        )  # fmt: skip
        assert body["steps"][0]["propagationSeconds"] == {"c2": 0.4}
        assert any("no store given" in p for p in body["problems"])
        assert "| 0 | half-503 | abort |" in (tmp_path / "report.md").read_text()
        assert "<svg" in (tmp_path / "report.html").read_text()
    finally:
        home.kubectl("delete", "drill", "-n", NAMESPACE, "created-by-run", check=False)


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("status",), id="status"),
        pytest.param(("halt", "some-drill"), id="halt"),
        pytest.param(("report", "some-drill", "--format", "json"), id="report"),
    ],
)
def test_a_home_cluster_without_the_crd_says_how_to_install_it(
    home: Home, args: tuple[str, ...]
) -> None:
    result = subprocess.run(
        [MESHFED, "drill", *args, "--home-kubeconfig", str(home.kubeconfig),
         "--home-context", "c3"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "the Drill CRD is not installed" in result.stderr
    assert "kubectl apply -f" in result.stderr and "drills_crd.yaml" in result.stderr


def test_an_unknown_drill_is_named(home: Home) -> None:
    for args in (("halt", "no-such-drill"), ("status", "no-such-drill")):
        result = home.meshfed(*args)
        assert result.returncode == 1
        assert f"no drill no-such-drill in namespace {NAMESPACE}" in result.stderr


def test_an_unreachable_cluster_in_scope_is_refused_as_stale(home: Home, tmp_path: Path) -> None:
    kubeconfig = yaml.safe_load(home.kubeconfig.read_text())
    for entry in kubeconfig["clusters"]:
        if entry["name"] == "c3":
            entry["cluster"]["server"] = "https://127.0.0.1:9"  # nothing listens on discard
    broken = tmp_path / "kubeconfig"
    broken.write_text(yaml.safe_dump(kubeconfig))
    config = yaml.safe_load(home.config.read_text())
    for cluster in config["clusters"]:
        cluster["kubeconfig"]["path"] = str(broken)
    path = tmp_path / "federation.yaml"
    path.write_text(yaml.safe_dump(config))
    result = home.meshfed("plan", "-f", write(tmp_path, changed(ABORT_IN_C2, scope={})),
                          "-c", str(path))  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "warning: cluster c3 is unreachable" in result.stdout
    assert "REFUSED (StaleCluster): cluster c3 is in scope but not synced and healthy" in (
        result.stdout
    )

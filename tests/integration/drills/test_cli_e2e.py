"""``meshfed drill run -f`` end to end: the real CLI process creates the Drill in the home
cluster, the real drill controller (``meshfed federate`` with drills on) runs it over the
3-cluster Istio sandbox, and the CLI follows it to the verdict; then ``meshfed drill report``
writes the JSON, Markdown and HTML reports of that run.

This lives with the drill runtime tests because it needs their fixtures (the controller and
the store its guards query); ``tests/integration/drillctl`` tests the CLI against a status
the test writes itself.

The CLI follows in both of its modes: in a log (stdout is not a terminal) a line per journal
event, then the final view; as on a terminal (``TTY_COMPATIBLE=1``) a live view, every frame
of which is in stdout.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers.drills import (
    HOME,
    NAMESPACE,
    DrillFederator,
    delete_drill,
    drill_status,
    wait_status,
)
from tests.helpers.istio import MESHFED, IstioSandbox
from tests.helpers.prometheus_remote import remote_write
from tests.integration.drills.conftest import SERVICE

pytestmark = pytest.mark.timeout(600)  # the first test of the package starts the sandbox

TARGETS = ["c1", "c2", "c3"]
GUARD = "e2e-errors"


def _guard_expr(run: str) -> str:
    """Holds only for samples this run wrote (the store outlives single tests)."""
    return f'sum(istio_requests_total{{destination_service_name="{SERVICE}",e2e_run="{run}"}}) > 0'


def _document(name: str, steps: list[dict[str, Any]], ttl: str) -> dict[str, Any]:
    return {
        "apiVersion": "meshfed.io/v1alpha1",
        "kind": "Drill",
        "metadata": {"name": name},
        "spec": {
            "services": [{"namespace": "default", "name": SERVICE}],
            "ttl": ttl,
            "steps": steps,
            "abortWhen": [{"name": GUARD, "expr": _guard_expr(name), "interval": "1s"}],
        },
    }


def _meshfed(
    fed: DrillFederator, *args: str, timeout: float, terminal: bool = False
) -> subprocess.CompletedProcess[str]:
    home = ["-c", str(fed.config), "--home-kubeconfig", str(fed.sb.kubeconfig),
            "--home-context", HOME]  # fmt: skip
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    if terminal:
        env["TTY_COMPATIBLE"] = "1"
    return subprocess.run(
        [MESHFED, "drill", *args, *home],
        capture_output=True, text=True, timeout=timeout, check=False, env=env,
    )  # fmt: skip


def _run(
    fed: DrillFederator, tmp_path: Path, doc: dict[str, Any], *, terminal: bool = False
) -> subprocess.CompletedProcess[str]:
    path = tmp_path / f"{doc['metadata']['name']}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return _meshfed(fed, "run", "-f", str(path), "--interval", "0.3", "--timeout", "150",
                    timeout=200, terminal=terminal)  # fmt: skip


def _reports(fed: DrillFederator, tmp_path: Path, name: str) -> dict[str, Any]:
    """Write the three reports; return the JSON one (the others are checked for content)."""
    for fmt in ("json", "md", "html"):
        out = tmp_path / f"{name}.{fmt}"
        result = _meshfed(fed, "report", name, "--format", fmt, "--out", str(out), timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        assert out.stat().st_size > 0, out
    html = (tmp_path / f"{name}.html").read_text()
    assert html.lstrip().lower().startswith("<!doctype html") and name in html
    assert name in (tmp_path / f"{name}.md").read_text()
    report: dict[str, Any] = json.loads((tmp_path / f"{name}.json").read_text())
    return report


def _delete(fed: DrillFederator, name: str) -> None:
    delete_drill(fed.sb, name)


def test_run_follows_a_real_drill_to_confirmed_and_reports_it(
    drill_sandbox: IstioSandbox, drill_federator: DrillFederator, tmp_path: Path
) -> None:
    name = "e2e-done"
    steps = [
        {"name": "delay-half", "duration": "3s",
         "delay": {"percentage": 50, "fixedDelay": "2s"}},
        {"name": "jason-to-c2", "duration": "3s",
         "route": {"headers": {"end-user": {"exact": "jason"}}, "cluster": "c2"}},
    ]  # fmt: skip
    try:
        result = _run(drill_federator, tmp_path, _document(name, steps, ttl="2m"))
        out = result.stdout
        assert result.returncode == 0, out + result.stderr
        assert f"drill {NAMESPACE}/{name} created" in out
        lines = [line.split(" ", 1)[1] for line in out.splitlines() if line[:4].isdigit()]
        assert lines[:3] == ["drill started", "preconditions passed", "step 0 delay-half started"]
        for index, step_name in enumerate(["delay-half", "jason-to-c2"]):
            for cluster in TARGETS:
                applied = f"step {index} {step_name} applied in {cluster} after "
                assert any(line.startswith(applied) for line in lines), (applied, out)
        assert "exit: Completed every step ran" in lines
        assert lines[-1] == "rollback verified: live objects equal the expected ones", out
        for shown in ("step 2/2 jason-to-c2", "Succeeded (Completed)", "verdict Confirmed"):
            assert shown in out, f"{shown!r} not in the CLI's final view:\n{out[-4000:]}"
        report = _reports(drill_federator, tmp_path, name)
        assert (report["phase"], report["verdict"]) == ("Succeeded", "Confirmed"), report
        assert report["verification"] == "verified"
        assert report["drift"] == "none", "nothing changed in the federation meanwhile"
        assert report["targets"] == TARGETS
        assert [s["name"] for s in report["steps"]] == ["delay-half", "jason-to-c2"]
        for step in report["steps"]:
            assert sorted(step["propagationSeconds"]) == TARGETS, step
            assert all(v >= 0 for v in step["propagationSeconds"].values()), step
        texts = [e["text"] for e in report["timeline"]]
        for index, step_name in enumerate(["delay-half", "jason-to-c2"]):
            for cluster in TARGETS:
                prefix = f"step {index} {step_name} applied in {cluster} after "
                assert any(t.startswith(prefix) for t in texts), (prefix, texts)
        for cluster in TARGETS:
            assert f"rolled back in {cluster}" in texts, texts
        assert texts[-1] == "rollback verified: live objects equal the expected ones", texts
        assert report["breach"] is None
    finally:
        _delete(drill_federator, name)


def _breach_when_running(fed: DrillFederator, store: str, name: str, errors: list[str]) -> None:
    """Once every target applied the step and the guard was clear once, write the sample
    that makes it hold (remote_write into the real store the controller queries). A 500, not
    a 503: the store is shared by the package, and test_guards' guard counts every 503."""
    try:
        wait_status(
            fed.sb, name,
            lambda s: len(s.get("applied") or []) == len(TARGETS)
            and any(e.get("holds") is False for e in s.get("evaluations") or []),
            what="the step applied everywhere and a clear guard evaluation", timeout=120,
        )  # fmt: skip
        labels = {"__name__": "istio_requests_total", "destination_service_name": SERVICE,
                  "response_code": "500", "source_cluster": "c3", "e2e_run": name}  # fmt: skip
        remote_write(f"http://{store}/api/v1/write", [(labels, [(int(time.time() * 1000), 3.0)])])
    except Exception as exc:  # reported by the test
        errors.append(repr(exc))


def test_run_exits_refuted_on_a_guard_breach_and_the_report_names_the_guard(
    drill_sandbox: IstioSandbox, drill_federator: DrillFederator, drill_store: str, tmp_path: Path
) -> None:
    name = "e2e-breach"
    steps = [{"name": "abort-all", "duration": "3m",
              "abort": {"percentage": 100, "httpStatus": 503}}]  # fmt: skip
    errors: list[str] = []
    writer = threading.Thread(
        target=_breach_when_running, args=(drill_federator, drill_store, name, errors), daemon=True
    )
    writer.start()
    try:
        result = _run(drill_federator, tmp_path, _document(name, steps, ttl="4m"), terminal=True)
        writer.join(timeout=30)
        assert errors == []
        out = result.stdout
        assert result.returncode == 3, out + result.stderr  # 3: Refuted (docs/drills.md)
        for shown in (
            "step 1/1 abort-all",
            "Running",
            "Aborted (GuardBreached)",
            "verdict Refuted",
            GUARD,
        ):
            assert shown in out, f"{shown!r} not in the CLI's output:\n{out[-4000:]}"
        report = _reports(drill_federator, tmp_path, name)
        assert (report["phase"], report["reason"], report["verdict"]) == (
            "Aborted", "GuardBreached", "Refuted",
        ), report  # fmt: skip
        assert report["breach"].startswith(f"guard {GUARD} held with value 3 at "), report
        assert report["verification"] == "verified"
        assert 0 < report["breachToVerifiedSeconds"] < 30, report
        (guard,) = report["guards"]
        assert guard["name"] == GUARD and guard["breachedAt"] is not None, guard
        assert any(e["event"] == "Exit" and GUARD in e["text"] for e in report["timeline"])
        assert GUARD in (tmp_path / f"{name}.md").read_text()
        assert drill_status(drill_federator.sb, name)["phase"] == "Aborted"
    finally:
        _delete(drill_federator, name)

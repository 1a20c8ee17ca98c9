"""The drill CLI without a cluster: spec errors name the field (exit 2), argument checks,
exit codes by outcome, and what ``status`` prints from a Drill object."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from federator.core.drills.summary import read_drill, summarize
from federator.drillctl.cli import app
from federator.drillctl.view import drill_view, drills_table, exit_code
from tests.unit.federator.core.drills.journal_sim import T0
from tests.unit.federator.drillctl.samples import drill_doc, run

pytestmark = pytest.mark.unit


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def write(tmp_path: Path, doc: Any) -> str:
    path = tmp_path / "drill.yaml"
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    return str(path)


def bad(path: str, value: Any) -> dict[str, Any]:
    doc = drill_doc()
    target: Any = doc
    *parents, last = path.split(".")
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    target[last] = value
    return doc


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        pytest.param(
            bad("spec.steps.0.abort.percentage", 150),
            "spec.steps[0].abort.percentage",
            id="percentage-out-of-range",
        ),
        pytest.param(
            bad("spec.abortWhen.0.expr", "sum(rate(x[1m]"),
            "spec.abortWhen[0].expr",
            id="promql-does-not-parse",
        ),
        pytest.param(bad("spec.ttl", "10 minutes"), "spec.ttl", id="bad-duration"),
        pytest.param(bad("kind", "Drll"), "kind", id="wrong-kind"),
        pytest.param(bad("spec.steps.0.name", "Step One"), "spec.steps[0].name", id="bad-name"),
        pytest.param("steps: [\n", "is not YAML", id="not-yaml"),
    ],
)
@pytest.mark.parametrize("command", ["plan", "run"])
def test_bad_spec_exits_2_naming_the_field(
    tmp_path: Path, command: str, doc: Any, field: str
) -> None:
    result = invoke(command, "-f", write(tmp_path, doc), "-c", str(tmp_path / "unused.yaml"))
    assert result.exit_code == 2, result.stdout + result.stderr
    assert field in result.stderr


def test_plan_needs_the_federation_config(tmp_path: Path) -> None:
    result = invoke("plan", "-f", write(tmp_path, drill_doc()))
    assert result.exit_code == 2
    assert "--config is required" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(("report", "d", "--format", "pdf"), "--format must be one of", id="format"),
        pytest.param(("freeze", "--reason", " "), "--reason must say why", id="empty-reason"),
        pytest.param(
            ("status", "--home-kubeconfig", "/nonexistent/kc"),
            "home cluster",
            id="unreadable-kubeconfig",
        ),
    ],
)
def test_argument_errors_exit_2(args: tuple[str, ...], message: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert message in result.stderr


@pytest.mark.parametrize(
    ("phase", "verdict", "code"),
    [
        pytest.param("Succeeded", "Confirmed", 0, id="confirmed"),
        pytest.param("Refused", "Inconclusive", 1, id="refused"),
        pytest.param("Aborted", "Refuted", 3, id="breach"),
        pytest.param("Succeeded", "Refuted", 3, id="steady-state-violated"),
        pytest.param("Aborted", "Inconclusive", 4, id="halted"),
        pytest.param("Failed", "Refuted", 5, id="rollback-unverified-wins"),
    ],
)
def test_exit_code_by_outcome(phase: str, verdict: str, code: int) -> None:
    assert exit_code(phase, verdict) == code


def render(renderable: Any) -> str:
    console = Console(width=200, record=True, force_terminal=False)
    console.print(renderable)
    return console.export_text()


def test_status_table_shows_what_the_objects_hold() -> None:
    breached, _ = run(breach_after=20.0)
    waiting = drill_doc()
    waiting["metadata"]["name"] = "not-started"
    text = render(drills_table([breached, waiting], now=T0 + 3600))
    assert "drill-1" in text and "Aborted" in text and "Refuted" in text
    assert "GuardBreached" in text and "1/1 step-one" in text
    assert "not-started" in text and "(no status)" in text


def test_one_drill_view_shows_clusters_guards_and_events() -> None:
    doc, journal = run(breach_after=20.0)
    text = render(drill_view(read_drill(doc), now=T0 + 100, events=100))
    assert "Aborted (GuardBreached), verdict Refuted" in text
    for cluster in ("c1", "c2", "c3"):
        assert cluster in text
    assert "Guards (latest evaluation)" in text and "errors" in text
    assert "RollbackApplied" in text and "Verified" in text
    assert summarize(doc).applied == journal.applied

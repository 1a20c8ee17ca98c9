"""Drill reports from real journals: verdict, breach, timeline, signals per window, and the
three formats (JSON values, Markdown sections, a self-contained HTML page with SVG charts)."""

from __future__ import annotations

import json
import re

import pytest

from federator.core.drills.summary import read_drill
from federator.core.drills.verify import Verification, verified_message
from federator.core.model import ClusterId, ObjectRef
from federator.drillctl.report import Report, Telemetry, build_report
from federator.drillctl.report_html import to_html
from federator.drillctl.report_text import to_json, to_markdown
from federator.drillctl.signals import Signal, Window
from tests.unit.federator.core.drills.journal_sim import T0
from tests.unit.federator.drillctl.samples import RATINGS, drill_doc, run, telemetry

pytestmark = pytest.mark.unit
NOW = T0 + 3600
C3 = ClusterId("c3")


def report_of(breach_after: float | None = 20.0, halt_at: float | None = None) -> Report:
    doc, journal = run(breach_after=breach_after, halt_at=halt_at)
    read = read_drill(doc)
    assert read.errors == ()
    return build_report(
        obj=doc, spec=read.spec, journal=read.journal, telemetry=telemetry(journal, now=NOW),
        now=NOW,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("breach_after", "halt_at", "phase", "reason", "verdict"),
    [
        pytest.param(20.0, None, "Aborted", "GuardBreached", "Refuted", id="guard-breach"),
        pytest.param(None, None, "Succeeded", "Completed", "Confirmed", id="completed"),
        pytest.param(None, T0 + 10, "Aborted", "Halted", "Inconclusive", id="halted"),
    ],
)
def test_outcome_of_every_exit_path(
    breach_after: float | None, halt_at: float | None, phase: str, reason: str, verdict: str
) -> None:
    r = report_of(breach_after, halt_at)
    assert (r.phase, r.reason, r.verdict) == (phase, reason, verdict)
    assert r.verification == "verified"
    kinds = [e.kind for e in r.timeline]
    assert kinds[0] == "Started" and kinds[-1] == "Verified"
    assert kinds.count("RollbackApplied") == 3
    assert r.finished is not None and r.started is not None and r.finished > r.started


def test_breach_names_guard_value_time_and_rollback_latency() -> None:
    r = report_of(20.0)
    assert r.breach.startswith("guard errors held with value 0.2 at 2023-11-14T")
    assert r.breach_to_verified is not None and 0 < r.breach_to_verified < 5
    (guard,) = r.guards
    assert guard.breached_at is not None
    assert any(h for _, _, h in guard.evaluations)
    step = r.steps[0]
    assert sorted(step.latencies) == ["c1", "c2", "c3"]
    assert all(v == pytest.approx(0.25) for v in step.latencies.values())


def test_signal_summaries_per_window_show_the_change() -> None:
    r = report_of(20.0)
    errors = r.summaries[RATINGS][Signal.ERRORS]["c2"]
    before, during, after = (errors.get(w) for w in Window)
    assert before is not None and during is not None and after is not None
    assert during > 0.2 > before and after < 0.01


def test_json_is_plain_values_with_times_and_signals() -> None:
    body = to_json(report_of(20.0))
    text = json.dumps(body)
    assert json.loads(text)["verdict"] == "Refuted"
    assert body["steps"][0]["propagationSeconds"] == {"c1": 0.25, "c2": 0.25, "c3": 0.25}
    assert body["signals"]["default/ratings"]["error_ratio"]["c1"]["during"] > 0.2
    assert body["timeline"][0]["at"].endswith("Z")
    assert body["exemplars"][0]["logs"][0]["severity"] == "ERROR"


def test_markdown_has_every_section() -> None:
    md = to_markdown(report_of(20.0))
    for heading in ("# Drill report: meshfed-system/drill-1", "## Steps", "## Guards",
                    "## Golden signals", "## Timeline", "## Exemplar traces"):  # fmt: skip
        assert heading in md
    assert "**Verdict: Refuted**" in md
    assert "| Error ratio (5xx) | c2 |" in md


def test_html_is_self_contained_with_charts() -> None:
    page = to_html(report_of(20.0))
    assert "<script" not in page
    assert not re.search(r'(src|href)="(?!http://store:9090/api/traces/)', page)
    assert "@import" not in page and "url(" not in page
    # 4 signals x 2 services + the run chart
    assert page.count("<svg") == 9
    assert "polyline" in page and "Refuted" in page


def test_html_escapes_what_users_wrote() -> None:
    doc = drill_doc(hypothesis={"description": "<img src=x onerror=alert(1)>"})
    read = read_drill(doc)
    r = build_report(obj=doc, spec=read.spec, journal=read.journal, telemetry=Telemetry(), now=NOW)
    page = to_html(r)
    assert "<img" not in page and "&lt;img src=x" in page


def test_a_drill_the_controller_has_not_picked_up_still_gets_a_report() -> None:
    doc = drill_doc()
    read = read_drill(doc)
    r = build_report(
        obj=doc, spec=read.spec, journal=read.journal,
        telemetry=Telemetry(problems=("no store given",)), now=NOW,
    )  # fmt: skip
    assert r.verdict == "Pending"
    assert "the controller has not picked it up" in " ".join(r.problems)
    for text in (to_markdown(r), to_html(r), json.dumps(to_json(r))):
        assert "no store given" in text


def test_unreadable_status_is_a_problem_not_a_crash() -> None:
    doc, _ = run()
    doc["status"]["version"] = 99
    read = read_drill(doc)
    r = build_report(obj=doc, spec=read.spec, journal=read.journal, telemetry=Telemetry(),
                     now=NOW, read_errors=read.errors)  # fmt: skip
    assert any("status version 99" in p for p in r.problems)
    assert "status version 99" in to_html(r)


def test_an_unverified_rollback_is_failed_and_says_what_is_left() -> None:
    doc, journal = run(breach_after=None, verify_failures=3)
    read = read_drill(doc)
    r = build_report(obj=doc, spec=read.spec, journal=read.journal,
                     telemetry=telemetry(journal, now=NOW), now=NOW)  # fmt: skip
    assert (r.phase, r.verdict) == ("Failed", "Inconclusive")
    assert r.verification.startswith("FAILED after 3 attempts: DrillObjectLeft")
    assert [e.kind for e in r.timeline].count("Verified") == 3
    page = to_html(r)
    assert "mismatch" in page and "FAILED after 3 attempts" in page


@pytest.mark.parametrize(
    ("message", "drift"),
    [
        pytest.param(
            verified_message(
                [Verification(C3, (), (ObjectRef(C3, "ServiceEntry", "default", "meshfed-r"),))],
                snapshot=True,
            ),
            "1 object(s): ServiceEntry default/meshfed-r in c3",
            id="drift-named",
        ),
        pytest.param(
            verified_message([Verification(C3, (), ())], snapshot=False),
            "unknown (no pre-drill snapshot: the leader changed)",
            id="unknown-after-a-crash",
        ),
        pytest.param("", "", id="no-drift-text"),
    ],
)
def test_drift_found_by_the_verification_is_in_every_format(message: str, drift: str) -> None:
    doc, _ = run(breach_after=None)
    verified = doc["status"]["events"][-1]
    assert verified["type"] == "Verified" and verified["holds"] is True
    verified["message"] = message
    read = read_drill(doc)
    r = build_report(obj=doc, spec=read.spec, journal=read.journal, telemetry=Telemetry(),
                     now=NOW)  # fmt: skip
    assert (r.verification, r.drift) == ("verified", drift)
    assert to_json(r)["drift"] == (drift or None)
    md, page = to_markdown(r), to_html(r)
    if drift:
        assert f"- Drift during the drill (not an error): {drift}" in md
        assert f"<b>Drift during the drill</b> (not an error): {drift}" in page
    else:
        assert "Drift" not in md and "Drift" not in page


def test_mismatches_of_a_failed_verification_are_shown_not_drift() -> None:
    doc, _ = run(breach_after=None, verify_failures=1)
    read = read_drill(doc)
    r = build_report(obj=doc, spec=read.spec, journal=read.journal, telemetry=Telemetry(),
                     now=NOW)  # fmt: skip
    assert r.verification == "verified" and r.phase == "Succeeded"
    texts = [e.text for e in r.timeline if e.kind == "Verified"]
    assert (
        texts[0] == "verification found mismatches: DrillObjectLeft: VirtualService default/x in c2"
    )
    assert "verification found mismatches: DrillObjectLeft" in to_markdown(r)

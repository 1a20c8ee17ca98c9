"""``meshfed drill run -f`` follows the Drill's status to the end and exits by verdict.

The drill controller is another component; here the test writes the status the way the
controller does (``record`` over the journal, every journal written to the status
subresource in docs/drills.md's layout) while the real CLI process follows it, so the
progress view and the exit codes are tested against the real apiserver's view of the object.
"""

from __future__ import annotations

import copy
import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from federator.core.drills.journal import Event, EventType, ExitReason, new_journal, record
from federator.core.drills.journal_codec import to_status
from federator.core.drills.parse import parse_drill
from federator.core.model import ClusterId
from tests.helpers.federator_harness import wait_for
from tests.integration.drillctl.conftest import HOME, MESHFED, NAMESPACE, Home
from tests.integration.drillctl.test_drill_cli import ABORT_IN_C2

pytestmark = pytest.mark.timeout(420)  # the first test starts the sandbox
C2 = ClusterId("c2")


def controller(home: Home, name: str, breach: bool, errors: list[str]) -> None:
    """Wait for the Drill, then write its journal event by event (0.3 s apart)."""
    try:
        wait_for(
            "the CLI to create the drill",
            lambda: (
                home.kubectl("get", "drill", "-n", NAMESPACE, name, check=False).returncode == 0
            ),
        )
        obj = json.loads(home.kubectl("get", "drill", "-n", NAMESPACE, name, "-o", "json").stdout)
        spec = parse_drill(obj)
        journal = new_journal(spec.name, (C2,))
        t = round(time.time(), 3)
        events = [
            Event(EventType.STARTED, t),
            Event(EventType.PRECONDITIONS_PASSED, t + 0.1),
            Event(EventType.STEP_STARTED, t + 0.2, step=0),
            Event(EventType.STEP_APPLIED, t + 0.5, step=0, cluster=C2, latency=0.3),
            Event(EventType.GUARD_EVALUATED, t + 1.5, guard="errors", value=0.0, holds=False),
        ]
        if breach:
            events.append(
                Event(EventType.GUARD_EVALUATED, t + 2.5, guard="errors", value=7.5, holds=True)
            )
        else:
            events.append(Event(EventType.EXIT, t + 2.5, reason=ExitReason.COMPLETED))
        events += [
            Event(EventType.ROLLBACK_APPLIED, t + 2.8, cluster=C2),
            Event(EventType.VERIFIED, t + 3.0, holds=True),
        ]
        for event in events:
            journal = record(journal, spec, event)
            status = json.dumps({"status": to_status(journal)})
            home.kubectl("patch", "drill", "-n", NAMESPACE, name, "--subresource=status",
                         "--type=merge", "-p", status)  # fmt: skip
            time.sleep(0.3)
    except Exception as exc:  # reported by the test
        errors.append(repr(exc))


@pytest.mark.parametrize(
    ("breach", "code", "shown"),
    [
        pytest.param(True, 3, ("Aborted (GuardBreached)", "verdict Refuted", "7.5"), id="breach"),
        pytest.param(False, 0, ("Succeeded (Completed)", "verdict Confirmed"), id="completed"),
    ],
)
def test_run_follows_to_the_verdict(
    home: Home, tmp_path: Path, breach: bool, code: int, shown: tuple[str, ...]
) -> None:
    name = f"follow-{'breach' if breach else 'done'}"
    doc: dict[str, Any] = copy.deepcopy(ABORT_IN_C2)
    doc["metadata"]["name"] = name
    doc["spec"]["abortWhen"][0]["for"] = "0s"
    path = tmp_path / "drill.yaml"
    path.write_text(yaml.safe_dump(doc))
    errors: list[str] = []
    thread = threading.Thread(target=controller, args=(home, name, breach, errors), daemon=True)
    thread.start()
    try:
        result = subprocess.run(
            [MESHFED, "drill", "run", "-f", str(path), "-c", str(home.config), "--interval",
             "0.2", "--timeout", "60", "--home-kubeconfig", str(home.kubeconfig),
             "--home-context", HOME],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        thread.join(timeout=30)
        assert errors == []
        assert result.returncode == code, result.stdout + result.stderr
        for text in (f"drill {NAMESPACE}/{name} created", *shown, "c2", "RollbackApplied"):
            assert text in result.stdout, result.stdout
    finally:
        home.kubectl("delete", "drill", "-n", NAMESPACE, name, check=False)

"""A guard breach with real data in the store aborts the drill and rolls it back: samples of
``istio_requests_total`` pushed over remote_write to a real ``meshfed collect`` make the
``abortWhen`` expression non-empty."""

from __future__ import annotations

import re
import time

from tests.helpers.drills import (
    DrillFederator,
    create_drill,
    events,
    terminal,
    wait_status,
    wait_virtual_host,
)
from tests.helpers.istio import IstioSandbox
from tests.helpers.prometheus_remote import remote_write
from tests.integration.drills.conftest import HOST, PORT, SERVICE

ERRORS = (
    f'sum(istio_requests_total{{destination_service_name="{SERVICE}",response_code="503"}}) > 0'
)


def _breaches(fed: DrillFederator) -> float:
    """Breaches the federator has counted (the package's federator serves other tests too)."""
    found = re.search(
        r"^meshfed_drill_breach_to_rollback_seconds_count (\S+)$", fed.metrics(), re.M
    )
    return float(found.group(1)) if found else 0.0


def test_guard_breach_aborts_and_rolls_back(
    drill_sandbox: IstioSandbox, drill_federator: DrillFederator, drill_store: str
) -> None:
    sb = drill_sandbox
    counted = _breaches(drill_federator)
    spec = {
        "services": [{"namespace": "default", "name": SERVICE}],
        "ttl": "5m",
        "steps": [{"name": "abort-all", "duration": "4m",
                   "abort": {"percentage": 100, "httpStatus": 503}}],
        "abortWhen": [{"name": "errors", "expr": ERRORS, "interval": "1s"}],
    }  # fmt: skip
    assert create_drill(sb, "breach", spec).returncode == 0
    running = wait_status(
        sb, "breach",
        lambda s: len(s.get("applied") or []) == 3 and s.get("evaluationsTotal", 0) >= 2,
        what="step applied and the guard evaluated",
    )  # fmt: skip
    assert all(e.get("holds") is False for e in running["evaluations"]), running["evaluations"]
    pushed = time.time()
    labels = {"__name__": "istio_requests_total", "destination_service_name": SERVICE,
              "response_code": "503", "source_cluster": "c3", "reporter": "source"}  # fmt: skip
    remote_write(f"http://{drill_store}/api/v1/write", [(labels, [(int(pushed * 1000), 7.0)])])
    status = wait_status(sb, "breach", terminal, what="a terminal phase after the breach")
    assert status["phase"] == "Aborted" and status["reason"] == "GuardBreached", status
    breach = [e for e in events(status, "Exit") if e["reason"] == "GuardBreached"]
    assert breach and "errors held" in breach[0]["message"], breach
    assert events(status, "Verified")[-1]["holds"] is True
    for ctx in ("c1", "c2", "c3"):
        wait_virtual_host(sb, ctx, HOST, PORT, lambda t: "abort=503" not in t,
                          what="the abort gone after the breach")  # fmt: skip
    assert _breaches(drill_federator) == counted + 1

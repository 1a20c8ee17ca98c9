"""The sandbox's audit policy and how its log lines are read back (who wrote what, when)."""

from __future__ import annotations

import json

import pytest
import yaml

from meshfed.sandbox.audit import AUDIT_POLICY, parse_audit_lines

pytestmark = pytest.mark.unit

AGENT = "meshfed-federator (pid 4242)"


def _event(**changes: object) -> str:
    event: dict[str, object] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "stage": "ResponseComplete",
        "verb": "patch",
        "userAgent": AGENT,
        "objectRef": {
            "resource": "serviceentries",
            "namespace": "bookinfo",
            "name": "reviews-c2",
            "apiGroup": "networking.istio.io",
        },
        "responseStatus": {"metadata": {}, "code": 200},
        "requestReceivedTimestamp": "2026-12-05T10:00:00.250000Z",
        "stageTimestamp": "2026-12-05T10:00:00.500000Z",
    }
    event.update(changes)
    return json.dumps(event)


def test_policy_records_istio_writes_only() -> None:
    policy = yaml.safe_load(AUDIT_POLICY)
    first, last = policy["rules"]
    assert policy["omitStages"] == ["RequestReceived"]
    assert first["level"] == "Metadata" and "get" not in first["verbs"]
    assert first["resources"] == [{"group": "networking.istio.io"}]
    assert last == {"level": "None"}


def test_a_line_becomes_a_write_with_epoch_times() -> None:
    (write,) = parse_audit_lines([_event()])
    assert (write.verb, write.user_agent, write.resource) == ("patch", AGENT, "serviceentries")
    assert (write.namespace, write.name, write.code) == ("bookinfo", "reviews-c2", 200)
    assert write.completed - write.received == pytest.approx(0.25)
    assert write.carried_out
    assert "200 patch serviceentries bookinfo/reviews-c2" in write.describe()


@pytest.mark.parametrize(
    ("line", "count", "carried_out"),
    [
        pytest.param(_event(responseStatus={"code": 409}), 1, False, id="conflict-not-carried"),
        pytest.param(_event(responseStatus=None), 1, False, id="no-status-code-0"),
        pytest.param(_event()[:40], 0, False, id="torn-line-skipped"),
        pytest.param("{}", 0, False, id="not-an-event-skipped"),
        pytest.param(_event(stageTimestamp="yesterday"), 0, False, id="bad-time-skipped"),
    ],
)
def test_odd_lines(line: str, count: int, carried_out: bool) -> None:
    writes = parse_audit_lines([line])
    assert len(writes) == count
    assert all(w.carried_out == carried_out for w in writes)

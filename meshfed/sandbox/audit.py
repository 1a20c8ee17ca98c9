"""The sandbox apiservers' audit log of Istio-group writes: who wrote what, and when.

Each sandbox kube-apiserver records every create/update/patch/delete in
``networking.istio.io`` (the only group federators write) at the ``Metadata`` level, one
JSON line per completed request (the ``RequestReceived`` stage is omitted), in
``<sandbox>/<cluster>/audit.log``. The federator names its process in its User-Agent
(``meshfed-federator (pid N)``), so a test can tell which of two replicas sent a write and
whether it was carried out - the evidence behind the leader-election tests.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    verbs: ["create", "update", "patch", "delete", "deletecollection"]
    resources:
      - group: networking.istio.io
  - level: None
"""
AUDIT_LOG_MAX_MB = 100
"""The apiserver rotates the log at this size and keeps one old file."""


def audit_policy_path(cluster_dir: Path) -> Path:
    return cluster_dir / "audit-policy.yaml"


def audit_log_path(cluster_dir: Path) -> Path:
    return cluster_dir / "audit.log"


def write_audit_policy(cluster_dir: Path) -> Path:
    path = audit_policy_path(cluster_dir)
    cluster_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(AUDIT_POLICY)
    return path


@dataclass(frozen=True, slots=True)
class AuditedWrite:
    """One write request an apiserver finished (carried out or refused)."""

    verb: str
    user_agent: str
    resource: str
    namespace: str
    name: str
    code: int
    received: float
    """When the apiserver started handling it (its head arrived), epoch seconds."""
    completed: float
    """When it answered, epoch seconds."""

    @property
    def carried_out(self) -> bool:
        return 200 <= self.code < 300

    def describe(self) -> str:
        when = datetime.fromtimestamp(self.completed).strftime("%H:%M:%S.%f")
        return (
            f"{when} {self.code} {self.verb} {self.resource} {self.namespace}/{self.name}"
            f" by {self.user_agent!r}"
        )


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def parse_audit_lines(lines: Iterable[str]) -> list[AuditedWrite]:
    """The writes in audit-log JSON lines; other events and torn lines are skipped."""
    out: list[AuditedWrite] = []
    for line in lines:
        try:
            event = json.loads(line)
            ref = event.get("objectRef") or {}
            out.append(
                AuditedWrite(
                    verb=event["verb"],
                    user_agent=event.get("userAgent", ""),
                    resource=ref.get("resource", ""),
                    namespace=ref.get("namespace", ""),
                    name=ref.get("name", ""),
                    code=int((event.get("responseStatus") or {}).get("code", 0)),
                    received=_epoch(event["requestReceivedTimestamp"]),
                    completed=_epoch(event["stageTimestamp"]),
                )
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # a line the apiserver is still writing, or not a request event
    return out


def read_audited_writes(cluster_dir: Path) -> list[AuditedWrite]:
    """Every write in the cluster's current audit log (empty when there is none yet)."""
    path = audit_log_path(cluster_dir)
    if not path.exists():
        return []
    with path.open(encoding="utf-8", errors="replace") as lines:
        return parse_audit_lines(lines)

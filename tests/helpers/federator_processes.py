"""Federators as real processes (``meshfed federate``) for the HA and crash tests (R5, R6):
a config with leader election, start/kill/pause/resume, their /metrics and /readyz, and what
the sandbox's apiservers themselves count (the proof that a process wrote nothing)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import yaml

from federator.kube.client import user_agent
from meshfed.sandbox.audit import AuditedWrite, read_audited_writes
from tests.helpers.federator_harness import kubectl
from tests.helpers.gateways import TEST_GATEWAY_PORT
from tests.helpers.processes import free_port, wait_http_ok
from tests.helpers.sandbox import RunningSandbox

MESHFED = str(Path(sys.executable).parent / "meshfed")
HOME = "c1"
NAMESPACE = "meshfed-system"
WRITE_VERBS = ("APPLY", "PATCH", "UPDATE", "CREATE", "DELETE", "DELETECOLLECTION")
_SAMPLE = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")


def ha_config(
    sandbox: RunningSandbox, directory: Path, *, lease: str, **changes: Any
) -> dict[str, Any]:
    """The sandbox's federation.yaml with leader election on (Lease ``lease`` in c1)."""
    doc: dict[str, Any] = yaml.safe_load((sandbox.directory / "federation.yaml").read_text())
    doc["leaderElection"] = {"enabled": True, "leaseName": lease}
    doc["gatewayProbe"] = {"port": TEST_GATEWAY_PORT}
    doc.update(changes)
    kubectl(sandbox.kubeconfig, HOME, "create", "namespace", NAMESPACE, check=False)
    return doc


class FederatorProcess:
    """One ``meshfed federate`` process with its own listen ports and log."""

    def __init__(self, sandbox: RunningSandbox, config: dict[str, Any], directory: Path) -> None:
        self.name = directory.name
        directory.mkdir(parents=True, exist_ok=True)
        self.http = f"127.0.0.1:{free_port()}"
        doc = dict(config)
        self.grpc = f"127.0.0.1:{free_port()}"
        doc["listen"] = {"http": self.http, "grpc": self.grpc}
        self.config = directory / "federation.yaml"
        self.config.write_text(yaml.safe_dump(doc))
        self.log = directory / "federate.log"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    MESHFED,
                    "federate",
                    "--config",
                    str(self.config),
                    "--home-kubeconfig",
                    str(sandbox.kubeconfig),
                    "--home-context",
                    HOME,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, timeout: float = 60.0) -> None:
        wait_http_ok(
            f"http://{self.http}/readyz", self.proc, what=self.name, log=self.log, timeout_s=timeout
        )

    def _get(self, path: str) -> str:
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"http://{self.http}{path}", timeout=2).text
        return ""

    def metric(self, name: str) -> float | None:
        """An unlabelled sample of the process's /metrics (None: not answering)."""
        for line in self._get("/metrics").splitlines():
            if line.startswith(f"{name} "):
                return float(line.split()[1])
        return None

    @property
    def leading(self) -> bool:
        return self.metric("meshfed_federator_leader") == 1.0

    def readyz(self) -> str:
        return self._get("/readyz")

    def status_text(self) -> str:
        """What ``meshfed status`` prints for this process."""
        out = subprocess.run(
            [MESHFED, "status", "--server", self.grpc],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env={**os.environ, "COLUMNS": "200"},
        )
        return out.stdout + out.stderr

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)

    @property
    def user_agent(self) -> str:
        """The User-Agent of this process's requests (the apiservers' audit logs show it)."""
        return user_agent(self.proc.pid)

    def pause(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        """SIGCONT (in case it is paused), SIGTERM, SIGKILL after 20 s; reaps it."""
        if self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.resume()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def apiserver_writes(
    sandbox: RunningSandbox, contexts: tuple[str, ...] = ("c1", "c2", "c3"), *, done: bool = True
) -> int:
    """Write requests the apiservers themselves counted for meshfed's kinds (Istio's API
    group: only federators write there), over ``contexts``: ``apiserver_request_total``.

    ``done``: only those the apiserver carried out (2xx). A request the fence aborted after
    its head was sent (the connection is closed before the body) is counted by the apiserver
    too, with an error code, but wrote nothing."""
    total = 0.0
    for context in contexts:
        text = kubectl(sandbox.kubeconfig, context, "get", "--raw", "/metrics").stdout
        for line in text.splitlines():
            m = _SAMPLE.match(line)
            if m is None:
                continue
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group("labels")))
            if (
                labels.get("group") != "networking.istio.io"
                or labels.get("verb") not in WRITE_VERBS
            ):
                continue
            if not done or labels.get("code", "").startswith("2"):
                total += float(m.group("value"))
    return int(total)


def audited_writes(
    sandbox: RunningSandbox, contexts: tuple[str, ...] = ("c1", "c2", "c3"), *, since: float
) -> list[AuditedWrite]:
    """Istio-group writes the apiservers finished at or after ``since`` (epoch seconds),
    from their audit logs, oldest first: who sent each (User-Agent) and its status code."""
    found = [
        write
        for context in contexts
        for write in read_audited_writes(sandbox.directory / context)
        if write.completed >= since
    ]
    return sorted(found, key=lambda write: write.completed)


def lease_holder(sandbox: RunningSandbox, lease: str) -> str:
    out = kubectl(
        sandbox.kubeconfig, HOME, "get", "lease", lease, "-n", NAMESPACE, "-o", "json", check=False
    )
    if out.returncode != 0:
        return ""
    return str(yaml.safe_load(out.stdout)["spec"].get("holderIdentity") or "")

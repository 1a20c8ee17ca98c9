"""Fixtures: the shared 3-cluster sandbox with c1 as the federator's home cluster (the Drill
CRD installed there, the federator's namespace created) and a global service ``rated``
exported from c1 only, so draining c1's region leaves the other region without endpoints."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.federator_harness import app_docs, apply, get_json, kubectl, pod_ips, wait_for
from tests.helpers.sandbox import RunningSandbox

MESHFED = str(Path(sys.executable).parent / "meshfed")
HOME = "c1"
NAMESPACE = "meshfed-system"
SERVICE_NS = "drills"
SERVICE = "rated"


@dataclass(frozen=True)
class Home:
    sandbox: RunningSandbox
    config: Path

    @property
    def kubeconfig(self) -> Path:
        return self.sandbox.kubeconfig

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> Any:
        return kubectl(self.kubeconfig, HOME, *args, stdin=stdin, check=check)

    def meshfed(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        """``meshfed drill <args>`` against the sandbox, c1 as the home cluster."""
        home = ["--home-kubeconfig", str(self.kubeconfig), "--home-context", HOME]
        return subprocess.run(
            [MESHFED, "drill", *args, *home],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@pytest.fixture(scope="module")
def home(sandbox: RunningSandbox) -> Home:
    crd = resources.files("federator").joinpath("drills_crd.yaml").read_text()
    kc = sandbox.kubeconfig
    kubectl(kc, HOME, "apply", "-f", "-", stdin=crd)
    kubectl(kc, HOME, "wait", "--for=condition=Established", "crd/drills.meshfed.io")
    kubectl(kc, HOME, "create", "namespace", NAMESPACE, check=False)
    for ctx in ("c1", "c2", "c3"):
        kubectl(kc, ctx, "create", "namespace", SERVICE_NS, check=False)
    apply(kc, "c1", app_docs(SERVICE, SERVICE_NS, replicas=2))
    wait_for("2 pods of rated", lambda: len(pod_ips(kc, "c1", SERVICE, SERVICE_NS)) == 2)
    # The drill plan counts endpoints from the EndpointSlices, which the controller fills a
    # moment after the pods get their IPs (under load, seconds later): wait for both there.
    wait_for("2 endpoints of rated", lambda: _slice_addresses(kc, "c1") == 2)
    return Home(sandbox, sandbox.directory / "federation.yaml")


def _slice_addresses(kubeconfig: Path, context: str) -> int:
    slices = get_json(
        kubeconfig,
        context,
        "endpointslices",
        "-n",
        SERVICE_NS,
        "-l",
        f"kubernetes.io/service-name={SERVICE}",
    )
    return sum(
        len(ep.get("addresses") or [])
        for item in (slices or {}).get("items", [])
        for ep in item.get("endpoints") or []
    )

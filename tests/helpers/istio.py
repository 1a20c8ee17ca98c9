"""Istio fixtures (a pytest plugin registered by ``tests/conftest.py``) and xDS helpers.

``istio_sandbox`` is a session-scoped 3-cluster sandbox with a real istiod per cluster, on its
own base port so it runs beside the plain ``sandbox``. ``mesh_federator`` runs the federator
over it the way users do (``meshfed federate`` as a subprocess). When istiod is not built the
fixture fails and says to run ``make setup``: nothing is skipped.

The helpers look at meshfed's output only through what istiod serves: a sidecar-like xDS
client placed in a cluster (its ID, network and locality) asks for the outbound cluster of a
host and the test asserts on the :class:`~meshfed.mesh.views.ClusterView`.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from meshfed.mesh.node import SidecarIdentity, sidecar_node
from meshfed.mesh.views import ClusterView, cluster_view
from meshfed.mesh.xds import XdsError, snapshot
from meshfed.sandbox.components import MissingBinaryError, find_istio
from meshfed.sandbox.layout import ClusterLayout, SandboxLayout, Topology
from meshfed.sandbox.manager import Sandbox, SandboxError
from tests.helpers.processes import free_port, stop, wait_http_ok
from tests.helpers.sandbox import RunningSandbox

ISTIO_SANDBOX_BASE_PORT = int(os.environ.get("MESHFED_TEST_ISTIO_BASE_PORT", "25000"))
MESHFED = str(Path(sys.executable).parent / "meshfed")
CLUSTERSET = "svc.clusterset.local"


class IstioSandbox(RunningSandbox):
    """A running sandbox with an istiod per cluster."""

    def cluster(self, name: str) -> ClusterLayout:
        return next(c for c in self.layout.clusters if c.name == name)

    def identity(self, context: str, namespace: str = "default") -> SidecarIdentity:
        c = self.cluster(context)
        return SidecarIdentity(
            cluster=c.name,
            namespace=namespace,
            region=c.region,
            zone=c.zone,
            network=c.network,
            istio_version=find_istio().version,
        )

    def xds(self, context: str) -> str:
        return f"127.0.0.1:{self.cluster(context).istiod.grpc}"

    def debug(self, context: str, path: str) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{self.cluster(context).istiod.http}{path}", timeout=5)

    def metrics(self, context: str) -> str:
        port = self.cluster(context).istiod.monitoring
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text


def outbound(host: str, port: int) -> str:
    return f"outbound|{port}||{host}"


def clusterset_host(name: str, namespace: str = "default") -> str:
    return f"{name}.{namespace}.{CLUSTERSET}"


def served(sb: IstioSandbox, context: str, cluster_name: str) -> ClusterView | None:
    """What ``context``'s istiod serves a sidecar in ``default`` for ``cluster_name`` now."""
    snap = snapshot(
        address=sb.xds(context), node=sidecar_node(sb.identity(context)), listeners=False
    )
    found = snap.clusters.get(cluster_name)
    return None if found is None else cluster_view(found, snap.endpoints.get(cluster_name))


def wait_served(
    sb: IstioSandbox,
    context: str,
    cluster_name: str,
    accept: Callable[[ClusterView | None], bool],
    *,
    what: str,
    timeout: float = 60.0,
) -> ClusterView | None:
    """Poll istiod's xDS until ``accept`` takes what it serves; fail with the last view."""
    deadline = time.monotonic() + timeout
    last: ClusterView | None = None
    error = ""
    while time.monotonic() < deadline:
        try:
            last = served(sb, context, cluster_name)
            if accept(last):
                return last
        except XdsError as err:
            error = str(err)
        time.sleep(0.3)
    raise AssertionError(
        f"timed out after {timeout:g}s waiting for {what} from {context}'s istiod; "
        f"last served: {last!r} {error}"
    )


def gateways(view: ClusterView | None) -> dict[str, int]:
    """{gateway address: weight} of the 15443 endpoints of a view."""
    if view is None:
        return {}
    return {e.address: e.weight for e in view.endpoints if e.port == 15443}


@contextlib.contextmanager
def running_istio_sandbox(
    directory: Path, *, clusters: int, base_port: int, why: str
) -> Iterator[tuple[Sandbox, SandboxLayout]]:
    """A gateway-topology sandbox with istiod in every cluster, torn down on exit; a missing
    istiod or a failed ``up`` fails the test (``why`` says which tests needed it)."""
    try:
        find_istio()
    except MissingBinaryError as err:
        pytest.fail(f"{err} {why}")
    sb = Sandbox(directory)
    try:
        try:
            layout = sb.up(
                clusters=clusters, topology=Topology.GATEWAY, base_port=base_port, istio=True
            )
        except SandboxError as err:
            pytest.fail(f"sandbox up --istio failed: {err}")
        yield sb, layout
    finally:
        sb.down()


@pytest.fixture(scope="session")
def istio_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IstioSandbox]:
    """Three clusters (c1, c2 in region-a; c3 in region-b), gateway topology, istiod each."""
    with running_istio_sandbox(
        tmp_path_factory.mktemp("istio-sandbox"),
        clusters=3,
        base_port=ISTIO_SANDBOX_BASE_PORT,
        why="The Istio conformance tests need it.",
    ) as (sb, layout):
        yield IstioSandbox(sb, layout)


class FederateRunner:
    """``meshfed federate`` over the Istio sandbox, restartable with another config.

    One at a time: two federators with different configs would prune each other's objects.
    The HTTP/gRPC ports stay the same across restarts. Its gateway prober is off: most of
    these tests run no gateway on 15443, and the prober would withdraw the gateways it cannot
    reach (R4 is tested in tests/integration/federator)."""

    def __init__(self, sb: IstioSandbox) -> None:
        self.sb = sb
        self.http = f"127.0.0.1:{free_port()}"
        self.grpc = f"127.0.0.1:{free_port()}"
        self.overrides: dict[str, object] | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def ensure(self, overrides: dict[str, object] | None = None) -> str:
        """Run with the sandbox's federation.yaml plus ``overrides`` (top-level keys);
        restarts only if the overrides differ. Returns the HTTP address."""
        overrides = overrides or {}
        if self._proc is not None and self.overrides == overrides:
            return self.http
        self.stop()
        doc = yaml.safe_load((self.sb.directory / "federation.yaml").read_text())
        doc["listen"] = {"http": self.http, "grpc": self.grpc}
        doc["gatewayProbe"] = {"enabled": False}
        doc.update(overrides)
        config = self.sb.directory / "federation-test.yaml"
        config.write_text(yaml.safe_dump(doc))
        log = self.sb.directory / "logs" / "federate.log"
        with log.open("ab") as out:
            self._proc = subprocess.Popen(
                [MESHFED, "federate", "--config", str(config)], stdout=out, stderr=subprocess.STDOUT
            )
        self.overrides = overrides
        wait_http_ok(f"http://{self.http}/readyz", self._proc, what="meshfed federate", log=log)
        return self.http

    @contextlib.contextmanager
    def configured(self, overrides: dict[str, object]) -> Iterator[str]:
        """Run with ``overrides`` for the ``with`` block, then as before (or stopped)."""
        previous = self.overrides
        try:
            yield self.ensure(overrides)
        finally:
            if previous is None:
                self.stop()
            else:
                self.ensure(previous)

    def stop(self) -> None:
        proc, self._proc, self.overrides = self._proc, None, None
        if proc is not None:
            stop(proc, timeout_s=20)


@pytest.fixture(scope="session")
def federate_runner(istio_sandbox: IstioSandbox) -> Iterator[FederateRunner]:
    runner = FederateRunner(istio_sandbox)
    try:
        yield runner
    finally:
        runner.stop()


@pytest.fixture(scope="session")
def mesh_federator(federate_runner: FederateRunner) -> str:
    """``meshfed federate`` over the Istio sandbox with its own config; yields its HTTP
    address (a module that runs it with another config restores this one afterwards)."""
    return federate_runner.ensure({})

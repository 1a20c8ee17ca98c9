"""``meshfed sandbox up|status|down``: real Kubernetes control planes as local processes.

``up`` is idempotent: it reuses certificates and tokens, restarts only processes that are not
running, and re-applies bootstrap objects with server-side apply. Progress goes to a
``Progress`` callback so the CLI can draw bars and tests can stay quiet.
"""

from __future__ import annotations

import shutil
import ssl
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

from meshfed.sandbox import bootstrap, components, kubeconfigs, processes
from meshfed.sandbox.layout import (
    DEFAULT_BASE_PORT,
    ClusterLayout,
    SandboxLayout,
    Topology,
    plan_layout,
)
from meshfed.sandbox.pki import ClusterCredentials, ensure_ca, ensure_cluster_credentials

Progress = Callable[[str, int], None]
"""Called with (what just finished, how many steps it counts for)."""

APISERVER_READY_TIMEOUT = 120.0


class SandboxError(RuntimeError):
    """``up``/``down`` could not do their job; the message says what failed and the fix."""


def _quiet(_: str, __: int) -> None:
    return None


@dataclass(frozen=True, slots=True)
class ClusterStatus:
    """One row of ``meshfed sandbox status``."""

    name: str
    region: str
    zone: str
    server: str
    processes: dict[str, bool]
    ready: bool
    rss_bytes: int


def steps_for(clusters: int) -> int:
    """How many progress steps ``up`` reports (etcd + 4 per cluster + files)."""
    return 1 + 4 * clusters + 1


class Sandbox:
    """The sandbox rooted at ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory.resolve()
        self.kubeconfig = self.directory / "kubeconfig"
        self.federation_config = self.directory / "federation.yaml"

    # ---- up ---------------------------------------------------------------------------
    def up(
        self,
        *,
        clusters: int,
        topology: Topology = Topology.GATEWAY,
        base_port: int | None = None,
        progress: Progress = _quiet,
    ) -> SandboxLayout:
        state = processes.load_state(self.directory)
        if state is not None and state.clusters != clusters:
            raise SandboxError(
                f"the sandbox in {self.directory} has {state.clusters} clusters, not {clusters}; "
                f"run `meshfed sandbox down --dir {self.directory}` first, or pass "
                f"--clusters {state.clusters}"
            )
        if state is not None and base_port is not None and state.base_port != base_port:
            raise SandboxError(
                f"the sandbox in {self.directory} uses --base-port {state.base_port}; "
                "run `meshfed sandbox down` first to move it"
            )
        port = base_port or (state.base_port if state else DEFAULT_BASE_PORT)
        layout = plan_layout(
            directory=self.directory,
            clusters=clusters,
            topology=Topology(state.topology) if state else topology,
            base_port=port,
        )
        try:
            bins = components.find_binaries()
        except components.MissingBinaryError as err:
            raise SandboxError(str(err)) from err
        self.directory.mkdir(parents=True, exist_ok=True)
        state = state or processes.SandboxState(
            clusters=clusters, topology=layout.topology.value, base_port=layout.base_port
        )
        ca_cert, ca_key = ensure_ca(self.directory / "pki")
        logs = self.directory / "logs"

        def ensure(name: str, argv: list[str], ports: tuple[int, ...]) -> None:
            record = state.processes.get(name)
            if record is not None and processes.is_alive(record):
                return
            busy = [p for p in ports if processes.port_open(p)]
            if busy:
                raise SandboxError(
                    f"cannot start {name}: port(s) {busy} already in use by another process; "
                    "stop it or choose other ports with --base-port"
                )
            state.processes[name] = processes.start(name=name, argv=argv, log_dir=logs)
            processes.save_state(self.directory, state)

        ensure(
            "etcd",
            components.etcd_argv(bins=bins, layout=layout, data_dir=self.directory / "etcd"),
            (layout.etcd_client_port, layout.etcd_peer_port),
        )
        self._wait_port(layout.etcd_client_port, state.processes["etcd"], timeout=30)
        progress("etcd", 1)

        creds: dict[str, ClusterCredentials] = {}
        for c in layout.clusters:
            creds[c.name] = ensure_cluster_credentials(
                cluster_dir=self.directory / c.name,
                ca_cert=ca_cert,
                ca_key=ca_key,
                cluster_name=c.name,
                service_ip=c.kubernetes_service_ip,
            )
            ensure(
                f"{c.name}/kube-apiserver",
                components.apiserver_argv(
                    bins=bins, layout=layout, cluster=c, creds=creds[c.name], ca_cert=ca_cert
                ),
                (c.apiserver_port,),
            )
        self._write_kubeconfigs(layout, creds, ca_cert)
        for c in layout.clusters:
            self._wait_apiserver(c, creds[c.name], ca_cert, state)
            progress(f"{c.name} kube-apiserver", 1)

        for c in layout.clusters:
            cdir = self.directory / c.name
            ensure(
                f"{c.name}/kube-controller-manager",
                components.controller_manager_argv(
                    bins=bins,
                    cluster=c,
                    kubeconfig=cdir / "controller-manager.kubeconfig",
                    creds=creds[c.name],
                    ca_cert=ca_cert,
                ),
                (c.controller_manager_port,),
            )
            ensure(
                f"{c.name}/kube-scheduler",
                components.scheduler_argv(
                    bins=bins, cluster=c, kubeconfig=cdir / "scheduler.kubeconfig"
                ),
                (c.scheduler_port,),
            )
            ensure(
                f"{c.name}/kwok",
                components.kwok_argv(bins=bins, cluster=c, kubeconfig=cdir / "admin.kubeconfig"),
                (c.kwok_port,),
            )
            progress(f"{c.name} controllers", 1)

        def prepare(cluster: ClusterLayout) -> str:
            bootstrap.bootstrap_cluster(
                cluster=cluster, topology=layout.topology, bins=bins, kubeconfig=self.kubeconfig
            )
            return cluster.name

        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = [pool.submit(prepare, c) for c in layout.clusters]
            for fut in futures:
                try:
                    name = fut.result()
                except bootstrap.BootstrapError as err:
                    raise SandboxError(f"{err}\nlogs: {logs}") from err
                progress(f"{name} CRDs, nodes, gateway", 2)

        kubeconfigs.write_yaml(
            self.federation_config,
            kubeconfigs.federation_document(layout, self.kubeconfig),
            private=False,
        )
        processes.save_state(self.directory, state)
        progress("kubeconfig, federation.yaml", 1)
        return layout

    def _write_kubeconfigs(
        self, layout: SandboxLayout, creds: dict[str, ClusterCredentials], ca_cert: Path
    ) -> None:
        entries = [(c.name, c.server_url, creds[c.name].admin_token) for c in layout.clusters]
        kubeconfigs.write_yaml(
            self.kubeconfig, kubeconfigs.kubeconfig_document(entries=entries, ca_cert=ca_cert)
        )
        for c in layout.clusters:
            cdir = self.directory / c.name
            cred = creds[c.name]
            for file, token in (
                ("admin.kubeconfig", cred.admin_token),
                ("controller-manager.kubeconfig", cred.controller_manager_token),
                ("scheduler.kubeconfig", cred.scheduler_token),
            ):
                kubeconfigs.write_component_kubeconfig(
                    path=cdir / file, cluster=c, token=token, ca_cert=ca_cert
                )

    def _wait_port(self, port: int, record: processes.ProcessRecord, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if processes.port_open(port):
                return
            if not processes.is_alive(record):
                break
            time.sleep(0.1)
        raise SandboxError(
            f"{record.name} did not start listening on 127.0.0.1:{port}; its log "
            f"({record.log}) ends with:\n{processes.tail(record.log)}"
        )

    def _wait_apiserver(
        self,
        cluster: ClusterLayout,
        creds: ClusterCredentials,
        ca_cert: Path,
        state: processes.SandboxState,
    ) -> None:
        record = state.processes[f"{cluster.name}/kube-apiserver"]
        ctx = ssl.create_default_context(cafile=str(ca_cert))
        headers = {"Authorization": f"Bearer {creds.admin_token}"}
        deadline = time.monotonic() + APISERVER_READY_TIMEOUT
        last = ""
        with httpx.Client(verify=ctx, headers=headers, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if not processes.is_alive(record):
                    break
                try:
                    resp = client.get(f"{cluster.server_url}/readyz")
                    if resp.status_code == 200:
                        return
                    last = resp.text[-500:]
                except httpx.HTTPError as err:
                    last = str(err)
                time.sleep(0.25)
        raise SandboxError(
            f"{cluster.name}'s kube-apiserver is not ready ({last or 'process exited'}); its log "
            f"({record.log}) ends with:\n{processes.tail(record.log)}"
        )

    # ---- status / down ----------------------------------------------------------------
    def status(self) -> list[ClusterStatus]:
        state = processes.load_state(self.directory)
        if state is None:
            return []
        layout = plan_layout(
            directory=self.directory,
            clusters=state.clusters,
            topology=Topology(state.topology),
            base_port=state.base_port,
        )
        ca = self.directory / "pki" / "ca.crt"
        rows = []
        for c in layout.clusters:
            procs = {
                name.split("/", 1)[1]: processes.is_alive(rec)
                for name, rec in state.processes.items()
                if name.startswith(f"{c.name}/")
            }
            rss = sum(
                processes.rss_bytes(rec.pid)
                for name, rec in state.processes.items()
                if name.startswith(f"{c.name}/") and processes.is_alive(rec)
            )
            rows.append(
                ClusterStatus(
                    name=c.name,
                    region=c.region,
                    zone=c.zone,
                    server=c.server_url,
                    processes=procs,
                    ready=self._ready(c, ca),
                    rss_bytes=rss,
                )
            )
        return rows

    def _ready(self, cluster: ClusterLayout, ca: Path) -> bool:
        token_file = self.directory / cluster.name / "pki" / "tokens.csv"
        if not token_file.exists() or not ca.exists():
            return False
        token = token_file.read_text().split(",", 1)[0]
        try:
            ctx = ssl.create_default_context(cafile=str(ca))
            resp = httpx.get(
                f"{cluster.server_url}/readyz",
                verify=ctx,
                timeout=2.0,
                headers={"Authorization": f"Bearer {token}"},
            )
        except httpx.HTTPError:
            return False
        return resp.status_code == 200

    def down(self, *, keep_data: bool = False) -> list[int]:
        """Stop every process (controllers, then apiservers, then etcd); return open ports.

        Unless ``keep_data``, etcd's data goes too, so the next ``up`` starts empty (the
        certificates, tokens and logs stay, which keeps kubeconfigs valid across restarts).
        """
        state = processes.load_state(self.directory)
        if state is None:
            return []
        records = list(state.processes.values())
        controllers = [r for r in records if r.name != "etcd" and "apiserver" not in r.name]
        apiservers = [r for r in records if "apiserver" in r.name]
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(processes.stop, controllers))
            list(pool.map(processes.stop, apiservers))
        if "etcd" in state.processes:
            processes.stop(state.processes["etcd"])
        alive = [r.name for r in records if processes.is_alive(r)]
        if alive:
            raise SandboxError(f"processes still running after SIGKILL: {alive}")
        layout = plan_layout(
            directory=self.directory,
            clusters=state.clusters,
            topology=Topology(state.topology),
            base_port=state.base_port,
        )
        (self.directory / processes.STATE_FILE).unlink()
        if not keep_data:
            shutil.rmtree(self.directory / "etcd", ignore_errors=True)
        return [p for p in layout.ports if processes.port_open(p)]

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
from pathlib import Path

import httpx

from meshfed.sandbox import bootstrap, components, istio, kubeconfigs, processes
from meshfed.sandbox.audit import write_audit_policy
from meshfed.sandbox.layout import (
    DEFAULT_BASE_PORT,
    ClusterLayout,
    SandboxLayout,
    Topology,
    plan_layout,
)
from meshfed.sandbox.mesh_pki import ensure_mesh_root
from meshfed.sandbox.pki import ClusterCredentials, ensure_ca, ensure_cluster_credentials
from meshfed.sandbox.status import ClusterStatus, cluster_statuses

Progress = Callable[[str, int], None]
"""Called with (what just finished, how many steps it counts for)."""

APISERVER_READY_TIMEOUT = 120.0


class SandboxError(RuntimeError):
    """``up``/``down`` could not do their job; the message says what failed and the fix."""


def _quiet(_: str, __: int) -> None:
    return None


def steps_for(clusters: int, *, istio: bool = False) -> int:
    """How many progress steps ``up`` reports (etcd + 4 per cluster (+2 with Istio) + files)."""
    return 1 + (6 if istio else 4) * clusters + 1


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
        istio: bool = False,
        progress: Progress = _quiet,
    ) -> SandboxLayout:
        """Start or repair the sandbox; ``istio`` adds an istiod per cluster (a sandbox that
        has Istio keeps it: remove it with ``down``)."""
        state = processes.load_state(self.directory)
        istio = istio or (state is not None and state.istio)
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
            istio=istio,
        )
        try:
            bins = components.find_binaries()
            dist = components.find_istio() if istio else None
        except components.MissingBinaryError as err:
            raise SandboxError(str(err)) from err
        self.directory.mkdir(parents=True, exist_ok=True)
        state = state or processes.SandboxState(
            clusters=clusters, topology=layout.topology.value, base_port=layout.base_port
        )
        state.istio = istio
        ca_cert, ca_key = ensure_ca(self.directory / "pki")
        logs = self.directory / "logs"

        def ensure(
            name: str,
            argv: list[str],
            ports: tuple[int, ...],
            env: dict[str, str] | None = None,
            cwd: Path | None = None,
        ) -> None:
            record = state.processes.get(name)
            if record is not None and processes.is_alive(record):
                return
            busy = [p for p in ports if processes.port_open(p)]
            if busy:
                raise SandboxError(
                    f"cannot start {name}: port(s) {busy} already in use by another process; "
                    "stop it or choose other ports with --base-port"
                )
            state.processes[name] = processes.start(
                name=name, argv=argv, log_dir=logs, env=env, cwd=cwd
            )
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
            write_audit_policy(self.directory / c.name)
            ensure(
                f"{c.name}/kube-apiserver",
                components.apiserver_argv(
                    bins=bins,
                    layout=layout,
                    cluster=c,
                    creds=creds[c.name],
                    ca_cert=ca_cert,
                    cluster_dir=self.directory / c.name,
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
                cluster=cluster,
                topology=layout.topology,
                bins=bins,
                kubeconfig=self.kubeconfig,
                istio=dist,
            )
            return cluster.name

        self._each(layout, prepare, progress, "CRDs, nodes, gateway", 2)
        if dist is not None:
            self._up_istio(
                layout=layout,
                dist=dist,
                bins=bins,
                ca_cert=ca_cert,
                ensure=ensure,
                progress=progress,
            )

        kubeconfigs.write_yaml(
            self.federation_config,
            kubeconfigs.federation_document(layout, self.kubeconfig),
            private=False,
        )
        processes.save_state(self.directory, state)
        progress("kubeconfig, federation.yaml", 1)
        return layout

    def _each(
        self,
        layout: SandboxLayout,
        work: Callable[[ClusterLayout], str],
        progress: Progress,
        what: str,
        steps: int,
    ) -> None:
        """Run ``work`` for every cluster concurrently; report each as it finishes."""
        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = [pool.submit(work, c) for c in layout.clusters]
            for fut in futures:
                try:
                    name = fut.result()
                except bootstrap.BootstrapError as err:
                    raise SandboxError(f"{err}\nlogs: {self.directory / 'logs'}") from err
                progress(f"{name} {what}", steps)

    def _up_istio(
        self,
        *,
        layout: SandboxLayout,
        dist: components.IstioDist,
        bins: components.Binaries,
        ca_cert: Path,
        ensure: Callable[..., None],
        progress: Progress,
    ) -> None:
        """One istiod per cluster: identity and CA first, then the process, then validation
        and the Gateway (:mod:`meshfed.sandbox.istio`)."""
        mesh_root = ensure_mesh_root(self.directory / "pki")

        def start(cluster: ClusterLayout) -> str:
            launch = istio.prepare(
                cluster=cluster,
                dist=dist,
                bins=bins,
                admin_kubeconfig=self.kubeconfig,
                cluster_dir=self.directory / cluster.name,
                ca_cert=ca_cert,
                mesh_root=mesh_root,
            )
            ensure(f"{cluster.name}/istiod", launch.argv, launch.ports, launch.env, launch.workdir)
            return cluster.name

        def finish(cluster: ClusterLayout) -> str:
            istio.finish(
                cluster=cluster,
                topology=layout.topology,
                dist=dist,
                bins=bins,
                admin_kubeconfig=self.kubeconfig,
                log=self.directory / "logs" / f"{cluster.name}-istiod.log",
            )
            return cluster.name

        self._each(layout, start, progress, "istiod started", 1)
        self._each(layout, finish, progress, "istiod ready, validation on, Gateway", 1)

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
        """One row per cluster (empty when no sandbox runs here)."""
        state = processes.load_state(self.directory)
        if state is None:
            return []
        return cluster_statuses(self.directory, state)

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
            istio=state.istio,
        )
        (self.directory / processes.STATE_FILE).unlink()
        if not keep_data:
            shutil.rmtree(self.directory / "etcd", ignore_errors=True)
        return [p for p in layout.ports if processes.port_open(p)]

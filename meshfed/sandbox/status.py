"""``meshfed sandbox status``: what runs per cluster, whether it answers, and its memory.

Built from ``state.json`` and the (pure) layout alone, so it works from any shell. The
``--json`` form is the machine-readable contract other tools read to find each cluster's
apiserver and istiod (``clusters[].istiod.xds``): keep its keys stable.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from meshfed.sandbox import processes
from meshfed.sandbox.istio import istiod_ready
from meshfed.sandbox.layout import ClusterLayout, Topology, plan_layout

ISTIOD = "istiod"


@dataclass(frozen=True, slots=True)
class IstiodStatus:
    """One cluster's istiod: where to reach it, whether it is ready, its memory."""

    xds: str
    """Plaintext xDS gRPC ``host:port`` (what a sidecar's discoveryAddress would be)."""
    secure_xds: str
    debug: str
    """Base URL of ``/ready`` and ``/debug/*``."""
    metrics: str
    webhook: str
    running: bool
    ready: bool
    rss_bytes: int


@dataclass(frozen=True, slots=True)
class ClusterStatus:
    """One row of ``meshfed sandbox status``."""

    name: str
    region: str
    zone: str
    network: str
    server: str
    processes: dict[str, bool]
    ready: bool
    rss_bytes: int
    istiod: IstiodStatus | None = None

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` entry: ``name`` first, ``istiod`` only when Istio runs."""
        out: dict[str, Any] = {
            "name": self.name,
            "region": self.region,
            "zone": self.zone,
            "network": self.network,
            "server": self.server,
            "ready": self.ready,
            "processes": dict(sorted(self.processes.items())),
            "rss_bytes": self.rss_bytes,
        }
        if self.istiod is not None:
            i = self.istiod
            out["istiod"] = {
                "xds": i.xds,
                "secure_xds": i.secure_xds,
                "debug": i.debug,
                "metrics": i.metrics,
                "webhook": i.webhook,
                "running": i.running,
                "ready": i.ready,
                "rss_bytes": i.rss_bytes,
            }
        return out

    @property
    def healthy(self) -> bool:
        istiod_ok = self.istiod is None or (self.istiod.running and self.istiod.ready)
        return self.ready and all(self.processes.values()) and istiod_ok


def _apiserver_ready(directory: Path, cluster: ClusterLayout) -> bool:
    ca = directory / "pki" / "ca.crt"
    token_file = directory / cluster.name / "pki" / "tokens.csv"
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


def _istiod(cluster: ClusterLayout, record: processes.ProcessRecord | None) -> IstiodStatus:
    ports = cluster.istiod
    running = record is not None and processes.is_alive(record)
    return IstiodStatus(
        xds=f"127.0.0.1:{ports.grpc}",
        secure_xds=f"127.0.0.1:{ports.secure_grpc}",
        debug=f"http://127.0.0.1:{ports.http}",
        metrics=f"http://127.0.0.1:{ports.monitoring}/metrics",
        webhook=f"https://127.0.0.1:{ports.https}/validate",
        running=running,
        ready=running and istiod_ready(cluster),
        rss_bytes=processes.rss_bytes(record.pid) if record is not None and running else 0,
    )


def cluster_statuses(directory: Path, state: processes.SandboxState) -> list[ClusterStatus]:
    """Every cluster's row, in cluster order."""
    layout = plan_layout(
        directory=directory,
        clusters=state.clusters,
        topology=Topology(state.topology),
        base_port=state.base_port,
        istio=state.istio,
    )
    rows = []
    for c in layout.clusters:
        mine = {
            name.split("/", 1)[1]: rec
            for name, rec in state.processes.items()
            if name.startswith(f"{c.name}/")
        }
        alive = {name: processes.is_alive(rec) for name, rec in mine.items()}
        rss = sum(processes.rss_bytes(rec.pid) for name, rec in mine.items() if alive[name])
        rows.append(
            ClusterStatus(
                name=c.name,
                region=c.region,
                zone=c.zone,
                network=c.network,
                server=c.server_url,
                processes=alive,
                ready=_apiserver_ready(directory, c),
                rss_bytes=rss,
                istiod=_istiod(c, mine.get(ISTIOD)) if layout.istio else None,
            )
        )
    return rows

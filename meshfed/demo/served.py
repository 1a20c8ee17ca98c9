"""What each cluster's istiod serves a sidecar in the app namespace, judged by ``checks``.

One short ADS stream per look (CDS, EDS, and for route expectations LDS and RDS, in Envoy's
order, as ``meshfed mesh inspect`` does), from a node placed in the cluster: its cluster ID,
locality and network come from the sandbox's layout.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from meshfed.demo.checks import check_endpoints, check_routes
from meshfed.demo.plan import PORT, Drained, Expectation, Exported, host
from meshfed.loadgen.envoy import virtual_hosts
from meshfed.mesh._envoy import Node
from meshfed.mesh.node import SidecarIdentity, sidecar_node
from meshfed.mesh.views import cluster_view
from meshfed.mesh.xds import XdsError, snapshot
from meshfed.sandbox.layout import SandboxLayout


@dataclass(frozen=True, slots=True)
class Mesh:
    """The sandbox's istiods and gateways."""

    layout: SandboxLayout
    istio_version: str

    def gateways(self) -> dict[str, str]:
        return {c.name: c.gateway_ip for c in self.layout.clusters}

    def serves(self, cluster: str) -> int:
        """How many clusters (CDS) ``cluster``'s istiod serves a sidecar; 0 when it cannot."""
        c = next(x for x in self.layout.clusters if x.name == cluster)
        try:
            snap = snapshot(address=f"127.0.0.1:{c.istiod.grpc}", node=self._node(cluster),
                            listeners=False)  # fmt: skip
        except XdsError:
            return 0
        return len(snap.clusters)

    def _node(self, cluster: str) -> Node:
        c = next(x for x in self.layout.clusters if x.name == cluster)
        return sidecar_node(
            SidecarIdentity(
                cluster=c.name,
                region=c.region,
                zone=c.zone,
                network=c.network,
                istio_version=self.istio_version,
            )
        )

    def look(self, cluster: str, expect: Expectation) -> tuple[bool, str]:
        """Judge ``expect`` against what ``cluster``'s istiod serves now."""
        c = next(x for x in self.layout.clusters if x.name == cluster)
        node = self._node(cluster)
        rds = not isinstance(expect, Drained | Exported)
        try:
            snap = snapshot(address=f"127.0.0.1:{c.istiod.grpc}", node=node, listeners=rds)
        except XdsError as err:
            return False, f"xDS: {err}"
        if isinstance(expect, Drained | Exported):
            name = f"outbound|{PORT}||{host(expect.service)}"
            found = snap.clusters.get(name)
            view = None if found is None else cluster_view(found, snap.endpoints.get(name))
            return check_endpoints(expect, view, self.gateways())
        table = snap.routes.get(str(PORT))
        return check_routes(expect, None if table is None else virtual_hosts(table))


@dataclass(slots=True)
class Seen:
    ok: bool
    at: float
    """Wall time when every cluster served it (or the deadline)."""
    per_cluster: dict[str, str]


def wait_everywhere(
    mesh: Mesh,
    expect: Expectation,
    clusters: tuple[str, ...],
    *,
    timeout: float,
    still: Callable[[], bool] = lambda: True,
    want: bool = True,
) -> Seen:
    """Poll every cluster until all serve ``expect`` (``want=False``: until none does),
    ``timeout`` passes or ``still`` says the step is over; the per-cluster text is the last
    thing seen."""
    deadline = time.monotonic() + timeout
    last: dict[str, str] = {}
    pending = set(clusters)
    while True:
        for cluster in sorted(pending):
            ok, text = mesh.look(cluster, expect)
            last[cluster] = text
            if ok == want:
                pending.discard(cluster)
        if not pending:
            return Seen(True, time.time(), last)
        if time.monotonic() > deadline or not still():
            return Seen(False, time.time(), last)
        time.sleep(0.25)

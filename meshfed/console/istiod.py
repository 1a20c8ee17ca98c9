"""What each cluster's istiod serves a sidecar for one service: the Service page's last word.

meshfed's ServiceEntries only matter through what istiod computes from them, so the Service
page asks every configured istiod (``--istiod NAME=HOST:PORT`` or ``--sandbox DIR``) as a
sidecar in the service's namespace would - the xDS client of ``meshfed.mesh``, the same as
``meshfed mesh inspect`` - and shows the outbound clusters of the service with their endpoints
(address, port, weight, locality, priority) and TLS mode.

The Envoy API is the optional ``meshfed[mesh]`` extra: without it the console still runs and
this section says what to install. The xDS client is synchronous (a gRPC stream read by a
thread), so each snapshot runs in a worker thread with a deadline.
"""

from __future__ import annotations

import asyncio
from typing import Any

from meshfed.console.settings import IstiodPlace
from meshfed.mesh import MeshExtraMissingError

ENABLE_HINT = (
    "Start the console with --istiod NAME=HOST:PORT (istiod's plaintext xDS port, repeatable) "
    "or --sandbox DIR (a `meshfed sandbox up --istio` directory) to see what istiod serves."
)


class IstiodReader:
    """Snapshots of the configured istiods, one concurrent xDS stream per cluster per call."""

    def __init__(self, places: tuple[IstiodPlace, ...], *, timeout_s: float = 5.0) -> None:
        self.places = places
        self.timeout_s = timeout_s

    def _one(self, place: IstiodPlace, namespace: str, name: str) -> dict[str, Any]:
        from meshfed.mesh.node import SidecarIdentity, sidecar_node  # noqa: PLC0415 (extra)
        from meshfed.mesh.views import cluster_view, matching  # noqa: PLC0415
        from meshfed.mesh.xds import snapshot  # noqa: PLC0415

        ident = SidecarIdentity(
            cluster=place.cluster,
            namespace=namespace,
            name="meshfed-console",
            region=place.region,
            zone=place.zone,
            network=place.network,
        )
        snap = snapshot(
            address=place.address,
            node=sidecar_node(ident),
            timeout=self.timeout_s,
            listeners=False,
        )
        names = matching(snap.clusters, f"{name}.{namespace}")
        views = [cluster_view(snap.clusters[n], snap.endpoints.get(n)) for n in names]
        return {
            "cluster": place.cluster,
            "address": place.address,
            "node": ident.node_id,
            "total_clusters": len(snap.clusters),
            "outbound": [v.to_dict() | {"host": v.host} for v in views],
            "error": "",
        }

    async def _guarded(self, place: IstiodPlace, namespace: str, name: str) -> dict[str, Any]:
        try:
            return await asyncio.wait_for(
                asyncio.to_thread(self._one, place, namespace, name), self.timeout_s * 3
            )
        except MeshExtraMissingError:
            raise
        except Exception as error:  # shown on the page for that cluster, the others still show
            return {
                "cluster": place.cluster,
                "address": place.address,
                "node": "",
                "total_clusters": 0,
                "outbound": [],
                "error": f"{type(error).__name__}: {error}",
            }

    async def served(self, namespace: str, name: str) -> dict[str, Any]:
        """``{"available", "reason", "clusters": [...]}`` for the Service page."""
        if not self.places:
            return {"available": False, "reason": ENABLE_HINT, "clusters": []}
        try:
            clusters = await asyncio.gather(
                *(self._guarded(p, namespace, name) for p in self.places)
            )
        except MeshExtraMissingError as error:
            return {"available": False, "reason": str(error), "clusters": []}
        return {"available": True, "reason": "", "clusters": list(clusters)}

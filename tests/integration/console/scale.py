"""The console at scale: many exported services in the world, and how fast the Services page
renders them (the scale test and ``bench/console_services.py``).

Services are selectorless with a hand-written EndpointSlice: cheap at scale (no pods).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.helpers.federator_harness import kubectl
from tests.integration.console.world import namespace_everywhere


def selectorless_docs(name: str, namespace: str, ips: list[str]) -> list[dict[str, Any]]:
    """An exported Service without selector and its EndpointSlice: cheap at scale (no pods)."""
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {"meshfed.io/export": "true"},
            },
            "spec": {"ports": [{"name": "http", "port": 9080, "targetPort": 9080}]},
        },
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": f"{name}-1",
                "namespace": namespace,
                "labels": {"kubernetes.io/service-name": name},
            },
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 9080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in ips],
        },
    ]


def create_scale_services(
    kubeconfig: Path, namespace: str, count: int, clusters: list[str]
) -> None:
    """``count`` exported selectorless services, service i exported by cluster i mod n."""
    namespace_everywhere(kubeconfig, namespace, clusters)
    docs: dict[str, list[dict[str, Any]]] = {c: [] for c in clusters}
    for i in range(count):
        cluster = clusters[i % len(clusters)]
        ip = f"10.250.{i // 250}.{i % 250 + 1}"
        docs[cluster] += selectorless_docs(f"svc-{i:03d}", namespace, [ip])
    for cluster, items in docs.items():
        kubectl(kubeconfig, cluster, "apply", "-f", "-", stdin=yaml.safe_dump_all(items))


def listed_count(grpc_address: str, namespace: str) -> int:
    import grpc  # noqa: PLC0415

    from federator.api._generated.meshfed.v1 import federation_pb2 as pb  # noqa: PLC0415
    from federator.api._generated.meshfed.v1 import federation_pb2_grpc as pb_grpc  # noqa: PLC0415

    with grpc.insecure_channel(grpc_address) as channel:
        stub = pb_grpc.FederationServiceStub(channel)
        listed = stub.ListServices(pb.ListServicesRequest(namespace=namespace), timeout=10)
        return sum(
            1 for s in listed.services if all(t.HasField("last_applied_time") for t in s.targets)
        )


def services_page_load_ms(
    chromium: Any, url: str, rows: int, *, runs: int = 3
) -> list[tuple[float, float]]:
    """Per run: milliseconds from navigation start to the Services matrix rendered with
    ``rows`` rows (fresh 1280x800 page), and of that the ``/api/services`` fetch."""
    out = []
    for _ in range(runs):
        context = chromium.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        try:
            page.goto(f"{url}/#/services")
            page.wait_for_function(
                f"() => document.querySelectorAll('#svc-table tbody tr').length >= {rows}",
                timeout=60_000,
            )
            total = page.evaluate(
                "Number(document.getElementById('main').dataset.loaded) - performance.timeOrigin"
            )
            fetch = page.evaluate(
                "performance.getEntriesByType('resource')"
                ".filter(e => e.name.includes('/api/services'))"
                ".map(e => e.duration).reduce((a, b) => Math.max(a, b), 0)"
            )
            out.append((float(total), float(fetch)))
        finally:
            context.close()
    return out

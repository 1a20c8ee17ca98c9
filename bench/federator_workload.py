"""The federator propagation benchmark's workload and gauges (``bench/federator_propagation.py``).

Plain httpx clients per kubeconfig context; the exported Services (selecting no pod, or with
no selector when the bench writes their EndpointSlices itself); the port patch that is one
change; the apiservers' write counters; the machine's load and the sandbox's RSS. Not part
of CI.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
import zlib
from pathlib import Path
from typing import Any

import httpx
import yaml

from meshfed.sandbox import processes

NS = "bench"
WRITE_VERBS = ("APPLY", "PATCH", "POST", "PUT", "DELETE", "DELETECOLLECTION")
WRITTEN_RESOURCES = ('resource="serviceentries"', 'resource="destinationrules"')
SLICE_MAX = 100
"""Endpoints per EndpointSlice, as the EndpointSlice controller cuts them by default."""


def raw_clients(kubeconfig: Path) -> dict[str, httpx.AsyncClient]:
    """Plain httpx clients per context (Service creates/patches and apiserver /metrics)."""
    doc = yaml.safe_load(kubeconfig.read_text())
    clusters = {c["name"]: c["cluster"] for c in doc["clusters"]}
    users = {u["name"]: u["user"] for u in doc["users"]}
    out = {}
    for ctx in doc["contexts"]:
        cluster, user = clusters[ctx["context"]["cluster"]], users[ctx["context"]["user"]]
        ca = base64.b64decode(cluster["certificate-authority-data"]).decode()
        out[ctx["name"]] = httpx.AsyncClient(
            base_url=cluster["server"],
            verify=ssl.create_default_context(cadata=ca),
            headers={"Authorization": f"Bearer {user['token']}"},
            timeout=60,
        )
    return out


async def create_services(http: httpx.AsyncClient, names: list[str], *, selector: bool) -> None:
    r = await http.post("/api/v1/namespaces", json={"metadata": {"name": NS}})
    assert r.status_code in (201, 409), r.text
    sem = asyncio.Semaphore(8)

    async def one(name: str) -> None:
        async with sem:
            meta = {"name": name, "namespace": NS, "labels": {"meshfed.io/export": "true"}}
            spec: dict[str, Any] = {"ports": [{"name": "http", "port": 9080}]}
            if selector:
                spec["selector"] = {"app": name}
            doc = {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec}
            r = await http.post(f"/api/v1/namespaces/{NS}/services", json=doc)
            assert r.status_code in (201, 409), r.text

    await asyncio.gather(*(one(n) for n in names))


async def create_endpoint_slices(
    http: httpx.AsyncClient, names: list[str], endpoints: int, *, cluster_index: int
) -> None:
    """``endpoints`` ready endpoints spread over ``names`` (Services without a selector), one
    EndpointSlice per ``SLICE_MAX`` endpoints (as the EndpointSlice controller cuts them),
    and behind each endpoint its Pod, labelled as an Istio workload's pods are (``app``,
    ``version``, the canonical-name labels, the template hash) and named by the endpoint's
    ``targetRef``, as in a real cluster: the federator watches pods with a ``version`` label
    for the subset labels of federated endpoints, so a workload without them would leave
    that cost out."""
    sem = asyncio.Semaphore(8)
    per = [
        endpoints // len(names) + (1 if i < endpoints % len(names) else 0)
        for i in range(len(names))
    ]
    offsets = [sum(per[:i]) for i in range(len(names))]

    async def one(name: str, first: int, count: int, part: int) -> None:
        addresses = [
            f"10.{100 + cluster_index}.{(first + i) // 250}.{(first + i) % 250 + 1}"
            for i in range(count)
        ]
        pods = [_pod(name, first + i) for i in range(count)]
        async with sem:
            for doc in pods:
                r = await http.post(f"/api/v1/namespaces/{NS}/pods", json=doc)
                assert r.status_code in (201, 409), r.text
        doc = {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": f"{name}-bench-{part}",
                "namespace": NS,
                "labels": {
                    "kubernetes.io/service-name": name,
                    "endpointslice.kubernetes.io/managed-by": "bench.meshfed.io",
                },
            },
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 9080, "protocol": "TCP"}],
            "endpoints": [
                {
                    "addresses": [a],
                    "conditions": {"ready": True},
                    "targetRef": {"kind": "Pod", "namespace": NS, "name": p["metadata"]["name"]},
                }
                for a, p in zip(addresses, pods, strict=True)
            ],
        }
        async with sem:
            r = await http.post(
                f"/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices", json=doc
            )
            assert r.status_code in (201, 409), r.text

    jobs = [
        one(name, offsets[i] + start, min(SLICE_MAX, per[i] - start), start // SLICE_MAX)
        for i, name in enumerate(names)
        for start in range(0, per[i], SLICE_MAX)
    ]
    await asyncio.gather(*jobs)


def _pod(service: str, index: int) -> dict[str, Any]:
    """The ``index``-th pod of ``service`` (3 versions, as Bookinfo's reviews has)."""
    version = f"v{index % 3 + 1}"
    template = f"{zlib.crc32(f'{service}/{version}'.encode()):08x}"
    labels = {
        "app": service,
        "version": version,
        "pod-template-hash": template,
        "security.istio.io/tlsMode": "istio",
        "service.istio.io/canonical-name": service,
        "service.istio.io/canonical-revision": version,
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"{service}-{version}-{template}-{index:05d}", "labels": labels},
        "spec": {
            "automountServiceAccountToken": False,
            "containers": [
                {"name": "app", "image": f"docker.io/istio/examples-bookinfo-{version}"}
            ],
        },
    }


def load() -> list[float]:
    """The machine's 1/5/15-minute load averages (2 cores shared with other work)."""
    return [round(v, 1) for v in os.getloadavg()]


def sandbox_rss_mib(directory: Path) -> dict[str, int]:
    """Summed RSS of the sandbox's kube-apiservers and of its etcd (MiB)."""
    state = processes.load_state(directory)
    out = {"kube_apiservers": 0, "etcd": 0}
    for name, record in (state.processes if state else {}).items():
        part = (
            "etcd"
            if name == "etcd"
            else "kube_apiservers"
            if name.endswith("/kube-apiserver")
            else None
        )
        if part:
            out[part] += processes.rss_bytes(record.pid) // (1024 * 1024)
    return out


async def patch_port(http: httpx.AsyncClient, name: str, port: int) -> dict[str, Any]:
    body = {"spec": {"ports": [{"name": "http", "port": port, "targetPort": 9080}]}}
    r = await http.patch(
        f"/api/v1/namespaces/{NS}/services/{name}",
        content=json.dumps(body),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert r.status_code == 200, r.text
    obj: dict[str, Any] = r.json()
    obj.setdefault("apiVersion", "v1")
    obj.setdefault("kind", "Service")
    return obj


async def apiserver_writes(http: httpx.AsyncClient) -> int:
    """Write requests the apiserver served for ServiceEntries and DestinationRules."""
    lines = (await http.get("/metrics")).text.splitlines()
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in lines
        if line.startswith("apiserver_request_total{")
        and any(r in line for r in WRITTEN_RESOURCES)
        and any(f'verb="{v}"' in line for v in WRITE_VERBS)
    )

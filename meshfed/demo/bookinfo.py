"""Bookinfo, from Istio's own sample in the Go module cache, split across the demo's clusters.

The sample is read where ``make setup`` put Istio's module (``samples/bookinfo/platform/kube/
bookinfo.yaml``) and never copied into this repository. Each cluster gets the Deployments
``plan.PLACEMENT`` gives it, the Services and ServiceAccounts those need, and an MCS
``ServiceExport`` per Service so the federator makes it a global service. The sandbox's
clusters run kwok: the pods exist (with their labels, so version subsets have endpoints) but
no container runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from meshfed.demo.plan import APP_NAMESPACE, PLACEMENT, service_of, services_in

SAMPLE = Path("samples") / "bookinfo" / "platform" / "kube" / "bookinfo.yaml"


class BookinfoError(RuntimeError):
    """The sample is missing or not what the demo expects."""


def load(module_dir: Path) -> list[dict[str, Any]]:
    """The sample's documents."""
    path = module_dir / SAMPLE
    if not path.exists():
        raise BookinfoError(
            f"{path} is missing: the demo reads Bookinfo from Istio's module; run `make setup`"
        )
    return [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]


def _account_of(deployment: dict[str, Any]) -> str:
    return str(deployment["spec"]["template"]["spec"].get("serviceAccountName", ""))


def for_cluster(cluster: str, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The documents to apply in ``cluster``, each in the app namespace, Services exported."""
    wanted = set(PLACEMENT[cluster])
    services = set(services_in(cluster))
    deployments = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] in wanted]
    found = {d["metadata"]["name"] for d in deployments}
    if found != wanted:
        raise BookinfoError(f"{SAMPLE} lacks the Deployments {sorted(wanted - found)}")
    accounts = {_account_of(d) for d in deployments}
    out: list[dict[str, Any]] = []
    for d in docs:
        name = d["metadata"]["name"]
        keep = (
            (d["kind"] == "Service" and name in services)
            or (d["kind"] == "ServiceAccount" and name in accounts)
            or (d["kind"] == "Deployment" and name in wanted)
        )
        if keep:
            out.append({**d, "metadata": {**d["metadata"], "namespace": APP_NAMESPACE}})
    out += [
        {
            "apiVersion": "multicluster.x-k8s.io/v1alpha1",
            "kind": "ServiceExport",
            "metadata": {"name": s, "namespace": APP_NAMESPACE},
        }
        for s in sorted(services)
    ]
    return out


def pods_expected(cluster: str, docs: list[dict[str, Any]]) -> dict[str, int]:
    """{service: pods} the cluster runs (the sample's replica counts)."""
    out: dict[str, int] = {}
    for d in for_cluster(cluster, docs):
        if d["kind"] == "Deployment":
            s = service_of(d["metadata"]["name"])
            out[s] = out.get(s, 0) + int(d["spec"].get("replicas", 1))
    return out

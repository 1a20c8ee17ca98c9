"""Kubeconfig and federation-config files the sandbox writes.

Kubeconfigs embed the CA and a bearer token (no file paths, no exec plugins), which is
exactly the shape the federator accepts from an untrusted source.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

from meshfed.sandbox.layout import ClusterLayout, SandboxLayout


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def kubeconfig_document(
    *, entries: list[tuple[str, str, str]], ca_cert: Path, current: str | None = None
) -> dict[str, Any]:
    """A kubeconfig with one cluster/user/context per (context name, server URL, token)."""
    ca_data = _b64(ca_cert)
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [
            {"name": name, "cluster": {"server": server, "certificate-authority-data": ca_data}}
            for name, server, _ in entries
        ],
        "users": [{"name": name, "user": {"token": token}} for name, _, token in entries],
        "contexts": [
            {"name": name, "context": {"cluster": name, "user": name}} for name, _, _ in entries
        ],
        "current-context": current or entries[0][0],
    }


def write_yaml(path: Path, document: dict[str, Any], *, private: bool = True) -> None:
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    if private:
        path.chmod(0o600)


def write_component_kubeconfig(
    *, path: Path, cluster: ClusterLayout, token: str, ca_cert: Path
) -> None:
    """The kubeconfig one control-plane component of ``cluster`` uses."""
    doc = kubeconfig_document(entries=[(cluster.name, cluster.server_url, token)], ca_cert=ca_cert)
    write_yaml(path, doc)


def federation_document(layout: SandboxLayout, kubeconfig: Path) -> dict[str, Any]:
    """A ready federation config for the sandbox's clusters (format: docs/configuration.md)."""
    return {
        "apiVersion": "meshfed.io/v1alpha1",
        "kind": "FederationConfig",
        "topology": layout.topology.value,
        "hostSuffix": "clusterset.local",
        "failover": {"regions": list(layout.regions)},
        "clusters": [
            {
                "name": c.name,
                "kubeconfig": {"path": str(kubeconfig), "context": c.name},
                "network": c.network,
                "region": c.region,
                "zone": c.zone,
                "eastWestGateway": {
                    "namespace": "istio-system",
                    "selector": {"istio": "eastwestgateway"},
                },
            }
            for c in layout.clusters
        ],
    }

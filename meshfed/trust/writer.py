"""The certificates in clusters: server-side apply of ``istio-system/cacerts``, and reads of
what istiod works from (the Secret, the mesh config's trust domain, the root ConfigMap).

Through the federator's own Kubernetes client (``federator.kube.client``), extended here
which server-side applies the Secret under a field manager of its own (``meshfed-certs``), so
the certificates' owner is visible in ``managedFields`` apart from the federator's objects.
Errors carry object names and HTTP status only: never a Secret's data.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence

import yaml

from federator.core.config import FederationConfig
from federator.core.config_parse import load_config
from federator.errors import ConfigError, FederatorError
from federator.kube.client import KubeClient
from federator.kube.clusters import load_credentials
from federator.kube.resources import SECRETS, Resource
from meshfed.trust.bundle import CACERTS, FIELD_MANAGER, ISTIO_NAMESPACE, cacerts_manifest
from meshfed.trust.errors import CertsError

MESH_CONFIGMAP = "istio"
ROOT_CONFIGMAP = "istio-ca-root-cert"
CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap")


async def apply_cacerts(client: KubeClient, files: Mapping[str, bytes]) -> None:
    await client.apply(cacerts_manifest(files), resource=SECRETS, field_manager=FIELD_MANAGER)


async def read_cacerts(client: KubeClient) -> dict[str, bytes] | None:
    """The ``cacerts`` Secret's files (None if the cluster has none)."""
    secret = await client.get(SECRETS, ISTIO_NAMESPACE, CACERTS)
    if secret is None:
        return None
    return {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}


async def mesh_trust_domain(client: KubeClient) -> str | None:
    """``trustDomain`` of the mesh config istiod reads (ConfigMap ``istio-system/istio``, key
    ``mesh``); None when there is no such ConfigMap (istiod then uses ``cluster.local``
    unless configured otherwise, which meshfed cannot see)."""
    cm = await client.get(CONFIGMAPS, ISTIO_NAMESPACE, MESH_CONFIGMAP)
    if cm is None:
        return None
    mesh = yaml.safe_load((cm.get("data") or {}).get("mesh") or "") or {}
    domain = mesh.get("trustDomain") if isinstance(mesh, dict) else None
    return str(domain) if domain else None


async def published_roots(client: KubeClient, namespace: str = ISTIO_NAMESPACE) -> bytes | None:
    """``root-cert.pem`` of the ``istio-ca-root-cert`` ConfigMap istiod publishes."""
    cm = await client.get(CONFIGMAPS, namespace, ROOT_CONFIGMAP)
    root = (cm or {}).get("data", {}).get("root-cert.pem")
    return root.encode() if root else None


def _federation(config: str) -> FederationConfig:
    try:
        return load_config(config)
    except ConfigError as err:
        raise CertsError("--config", str(err)) from err


def member_names(config: str) -> list[str]:
    """The member clusters of federation config ``config``."""
    return [c.name for c in _federation(config).clusters]


async def open_clients(config: str, only: Sequence[str] = ()) -> dict[str, KubeClient]:
    """A client per member cluster of federation config ``config`` (``only``: a subset)."""
    federation = _federation(config)
    names = [c.name for c in federation.clusters]
    unknown = sorted(set(only) - set(names))
    if unknown:
        raise CertsError("--cluster", f"{unknown} are not members of {config} ({names})")
    clients: dict[str, KubeClient] = {}
    try:
        for settings in federation.clusters:
            if only and settings.name not in only:
                continue
            try:
                loaded = await load_credentials(settings, config=federation, home=None)
            except FederatorError as err:
                raise CertsError(f"clusters[{settings.name}].kubeconfig", str(err)) from err
            clients[settings.name] = KubeClient(
                cluster=settings.name, credentials=loaded.credentials
            )
    except BaseException:
        for client in clients.values():
            await client.aclose()
        raise
    return clients

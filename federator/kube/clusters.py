"""Cluster registry: turns each configured member into a ``KubeClient`` (``ClusterRegistry``).

A member is reached through a kubeconfig file on the federator's host (``clusters[].kubeconfig``)
or through a kubeconfig stored in a Secret in the federator's own namespace
(``clusters[].secret``), read with the *home* client (in-cluster service account, or an
explicit kubeconfig for development). Every kubeconfig, whatever its origin, goes through
``federator.core.kubeconfig_safety.check_kubeconfig`` first, and a Secret must carry the label
``meshfed.io/cluster: <cluster name>``, so a typo in the config cannot make the federator use
an unrelated Secret. Failures here are ``ConfigError``: the process stops with the reason.

Every loaded kubeconfig also yields a fingerprint (SHA-256 of its raw bytes, plus the context):
``federator.kube.credentials_watch`` re-reads the sources and compares fingerprints to pick up
rotated credentials without a restart, and to leave an unchanged source alone (R7).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from federator.core.config import ClusterSettings, FederationConfig, KubeconfigSecret
from federator.core.kubeconfig_safety import check_kubeconfig
from federator.core.model import CLUSTER_SECRET_LABEL, ClusterId
from federator.errors import ConfigError, FederatorError
from federator.kube.client import Credentials, KubeClient, Timeouts
from federator.kube.fence import WriteFence
from federator.kube.resources import SECRETS
from federator.lifecycle import cancel_and_wait

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
SERVICE_ACCOUNT_DIR_ENV = "MESHFED_SERVICEACCOUNT_DIR"
"""Overrides ``SERVICE_ACCOUNT_DIR`` (``token``, ``ca.crt``): a test and development aid for
running in-cluster mode outside a Pod; a Pod never needs it."""
HOME = ClusterId("home")
"""The name of the home cluster's client (in its error messages)."""


def _b64(value: Any, where: str) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(f"{where} is not valid base64") from exc


def _named(doc: Mapping[str, Any], section: str, name: str, source: str) -> Mapping[str, Any]:
    for item in doc.get(section) or []:
        if isinstance(item, Mapping) and item.get("name") == name:
            inner = item.get(section[:-1])
            if isinstance(inner, Mapping):
                return inner
    raise ConfigError(f"{source}: no {section[:-1]} named {name!r}")


def credentials_from_kubeconfig(doc: Any, *, context: str | None, source: str) -> Credentials:
    """Credentials of ``context`` (or the current context) of a parsed kubeconfig.

    Raises ``UnsafeKubeconfigError`` for plugin/file-reading kubeconfigs, ``ConfigError`` for
    a missing context, cluster or user."""
    check_kubeconfig(doc, source=source)
    name = context or doc.get("current-context")
    if not name:
        raise ConfigError(f"{source}: no context given and no current-context set")
    ctx = _named(doc, "contexts", str(name), source)
    cluster = _named(doc, "clusters", str(ctx.get("cluster")), source)
    user = _named(doc, "users", str(ctx.get("user")), source) if ctx.get("user") else {}
    server = cluster.get("server")
    if not isinstance(server, str) or not server.startswith("https://"):
        raise ConfigError(f"{source}: context {name!r} needs an https:// server URL")
    if cluster.get("insecure-skip-tls-verify"):
        raise ConfigError(f"{source}: insecure-skip-tls-verify is refused; give the CA data")
    ca = cluster.get("certificate-authority-data")
    return Credentials(
        server=server,
        ca_pem=_b64(ca, f"{source}: certificate-authority-data") if ca else None,
        token=user.get("token"),
        cert_pem=_b64(user["client-certificate-data"], f"{source}: client-certificate-data")
        if user.get("client-certificate-data")
        else None,
        key_pem=_b64(user["client-key-data"], f"{source}: client-key-data")
        if user.get("client-key-data")
        else None,
        username=user.get("username"),
        password=user.get("password"),
    )


def _parse_yaml(text: str, source: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source} is not valid YAML: {exc}") from exc


@dataclass(frozen=True, slots=True)
class LoadedCredentials:
    """Credentials of one member and the fingerprint of the kubeconfig they came from."""

    credentials: Credentials
    fingerprint: str
    """SHA-256 (hex) of the raw kubeconfig bytes and the context: equal means unchanged."""
    source: str
    """Where the kubeconfig came from (``kubeconfig /p/f`` or ``Secret ns/name``), for messages."""


def fingerprint(raw: bytes, context: str | None = None) -> str:
    """The fingerprint of a raw kubeconfig (``LoadedCredentials.fingerprint``)."""
    digest = hashlib.sha256(raw)
    digest.update(b"\0" + (context or "").encode())
    return digest.hexdigest()


def parse_kubeconfig(raw: bytes, *, context: str | None, source: str) -> LoadedCredentials:
    """Parse, safety-check and resolve a raw kubeconfig (``ConfigError`` if it cannot be used)."""
    doc = _parse_yaml(raw.decode(errors="replace"), source)
    creds = credentials_from_kubeconfig(doc, context=context, source=source)
    return LoadedCredentials(
        credentials=creds, fingerprint=fingerprint(raw, context), source=source
    )


def read_file_kubeconfig(path: str) -> bytes:
    """The raw bytes of a kubeconfig file (``ConfigError`` if unreadable)."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"kubeconfig {path} cannot be read: {exc.strerror}") from exc


def load_file(path: str, context: str | None) -> LoadedCredentials:
    return parse_kubeconfig(
        read_file_kubeconfig(path), context=context, source=f"kubeconfig {path}"
    )


def file_credentials(path: str, context: str | None) -> Credentials:
    return load_file(path, context).credentials


def in_cluster_credentials() -> Credentials:
    """The federator's own service account (when it runs as a Pod)."""
    host, port = (
        os.environ.get("KUBERNETES_SERVICE_HOST"),
        os.environ.get("KUBERNETES_SERVICE_PORT"),
    )
    if not host or not port:
        raise ConfigError(
            "clusters[].secret needs the federator's home cluster: run it in a Pod or pass "
            "--home-kubeconfig"
        )
    account = Path(os.environ.get(SERVICE_ACCOUNT_DIR_ENV) or SERVICE_ACCOUNT_DIR)
    return Credentials(
        server=f"https://{host}:{port}",
        ca_pem=(account / "ca.crt").read_bytes(),
        token_file=str(account / "token"),  # re-read when the kubelet rotates it
    )


def secret_source(namespace: str, secret: KubeconfigSecret) -> str:
    return f"Secret {namespace}/{secret.name}"


async def read_secret_kubeconfig(
    *, home: KubeClient, namespace: str, cluster: ClusterId, secret: KubeconfigSecret
) -> bytes:
    """The raw kubeconfig in a cluster's Secret, after checking the Secret's label.

    ``ConfigError`` if the Secret cannot be read, does not exist, is not labelled
    ``meshfed.io/cluster=<cluster>`` or lacks the key."""
    source = secret_source(namespace, secret)
    try:
        obj = await home.get(SECRETS, namespace, secret.name)
    except FederatorError as exc:
        raise ConfigError(f"{source} for cluster {cluster} cannot be read: {exc}") from exc
    if obj is None:
        raise ConfigError(f"{source} for cluster {cluster} does not exist")
    labels = (obj.get("metadata") or {}).get("labels") or {}
    if labels.get(CLUSTER_SECRET_LABEL) != cluster:
        raise ConfigError(
            f"{source} is not labelled {CLUSTER_SECRET_LABEL}={cluster}: label it to allow "
            "the federator to use it for that cluster"
        )
    data = (obj.get("data") or {}).get(secret.key)
    if data is None:
        raise ConfigError(f"{source} has no data key {secret.key!r}")
    return _b64(data, f"{source} key {secret.key}")


async def load_secret(
    *, home: KubeClient, namespace: str, cluster: ClusterId, secret: KubeconfigSecret
) -> LoadedCredentials:
    raw = await read_secret_kubeconfig(
        home=home, namespace=namespace, cluster=cluster, secret=secret
    )
    return parse_kubeconfig(raw, context=None, source=secret_source(namespace, secret))


async def secret_credentials(
    *, home: KubeClient, namespace: str, cluster: ClusterId, secret: KubeconfigSecret
) -> Credentials:
    loaded = await load_secret(home=home, namespace=namespace, cluster=cluster, secret=secret)
    return loaded.credentials


async def open_members(
    config: FederationConfig,
    *,
    home: KubeClient | None = None,
    timeouts: Timeouts | None = None,
    fence: WriteFence | None = None,
) -> tuple[dict[ClusterId, KubeClient], dict[ClusterId, LoadedCredentials]]:
    """One client per member (its writes fenced by ``fence``) and the credentials each was
    built from.

    Raises ``ConfigError`` (after closing what it opened)."""
    clients: dict[ClusterId, KubeClient] = {}
    loaded: dict[ClusterId, LoadedCredentials] = {}
    try:
        for settings in config.clusters:
            loaded[settings.name] = await load_credentials(settings, config=config, home=home)
            clients[settings.name] = KubeClient(
                cluster=settings.name,
                credentials=loaded[settings.name].credentials,
                timeouts=timeouts,
                fence=fence,
            )
    except BaseException:
        for client in clients.values():
            await client.aclose()
        raise
    return clients, loaded


async def build_clients(
    config: FederationConfig,
    *,
    home: KubeClient | None = None,
    timeouts: Timeouts | None = None,
) -> dict[ClusterId, KubeClient]:
    """One client per member cluster (``open_members`` without the fingerprints)."""
    clients, _ = await open_members(config, home=home, timeouts=timeouts)
    return clients


class ClusterRegistry:
    """The clients of one process: a client per member, the home client, retired clients.

    ``open()`` builds the home client (when the config has Secret-based members; ``home`` are
    its credentials) and a client per member. ``clients`` is one dict for the registry's whole
    life: the reconciler and the sources read that same dict, so ``replace`` (rotated
    credentials) is seen by all at once; the replaced client is closed ``retire_after``
    seconds later (longer than a request timeout, so requests in flight on it finish).
    ``aclose()`` closes every client, retired ones included (idempotent). Every member client
    writes through ``fence`` (leader election, R5), rotated ones included; the home client is
    built also when leader election is on (the Lease lives there)."""

    def __init__(
        self,
        config: FederationConfig,
        *,
        home: Credentials | None = None,
        timeouts: Timeouts | None = None,
        retire_after: float = 40.0,
        fence: WriteFence | None = None,
        lease_home: bool = False,
    ) -> None:
        """``lease_home``: build the home client even without Secret members (the leader
        Lease lives in the home cluster)."""
        self._config = config
        self._fence = fence
        self._lease_home = lease_home
        self._home_credentials = home
        self._timeouts = timeouts
        self._retire_after = retire_after
        self.home: KubeClient | None = None
        """The federator's home cluster (reads kubeconfig Secrets); None if no member needs it."""
        self.clients: dict[ClusterId, KubeClient] = {}
        """The client in use per member cluster."""
        self.loaded: dict[ClusterId, LoadedCredentials] = {}
        """The credentials each client was built from, as of ``open()``."""
        self._retiring: dict[KubeClient, asyncio.Task[None]] = {}

    async def open(self) -> None:
        """Build every client; ``ConfigError`` (after closing what was opened) if one fails."""
        if self._lease_home and self._home_credentials is None:
            raise ConfigError(
                "leaderElection.enabled needs the home cluster, where the Lease lives: run the "
                "federator in a Pod or pass --home-kubeconfig"
            )
        needs_home = self._lease_home or any(c.secret is not None for c in self._config.clusters)
        if needs_home and self._home_credentials is not None and self.home is None:
            self.home = KubeClient(cluster=HOME, credentials=self._home_credentials)
        try:
            clients, loaded = await open_members(
                self._config, home=self.home, timeouts=self._timeouts, fence=self._fence
            )
        except BaseException:
            await self.aclose()
            raise
        self.clients.update(clients)
        self.loaded.update(loaded)

    async def replace(self, name: ClusterId, client: KubeClient) -> None:
        """Use ``client`` for ``name`` from now on; close the one it replaces later."""
        old = self.clients[name]
        client.fence = self._fence
        self.clients[name] = client
        self._retiring[old] = asyncio.create_task(
            self._close_later(old), name=f"close-old-client-{name}"
        )

    async def _close_later(self, client: KubeClient) -> None:
        try:
            await asyncio.sleep(self._retire_after)
            await client.aclose()
        finally:
            self._retiring.pop(client, None)

    async def aclose(self) -> None:
        """Close every client (idempotent)."""
        retiring, self._retiring = self._retiring, {}
        clients = [*self.clients.values(), *retiring, *([self.home] if self.home else [])]
        self.clients.clear()
        self.home = None
        try:
            await cancel_and_wait(retiring.values())
        finally:  # closing twice is harmless; leaving one open is not
            for client in clients:
                await client.aclose()


async def load_credentials(
    settings: ClusterSettings, *, config: FederationConfig, home: KubeClient | None
) -> LoadedCredentials:
    """Read and check the kubeconfig of one member (file or Secret)."""
    if settings.kubeconfig is not None:
        return load_file(settings.kubeconfig.path, settings.kubeconfig.context)
    assert settings.secret is not None  # validate() guarantees exactly one
    if home is None:
        raise ConfigError(
            f"cluster {settings.name} uses a Secret, but no home cluster client is available"
        )
    return await load_secret(
        home=home, namespace=config.namespace, cluster=settings.name, secret=settings.secret
    )

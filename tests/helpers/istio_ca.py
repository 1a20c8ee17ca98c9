"""A workload's view of istiod's CA: ask a cluster's istiod for a certificate over its gRPC API
(``istio.v1.auth.IstioCertificateService/CreateCertificate``), as pilot-agent does.

The stubs are generated from the ``istio.io/api`` module's ``ca.proto`` by
``scripts/gen-istio-ca-protos.sh`` (run by ``make setup``). istiod authenticates the caller
with a Kubernetes JWT: a ServiceAccount token from the TokenRequest API with audience
``istio-ca``, which istiod checks with a TokenReview against its apiserver; the certificate's
SAN is the SPIFFE id of that service account (istiod ignores the CSR's own SAN). The
``clusterid`` metadata names the cluster the token comes from, as pilot-agent sends it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.helpers.federator_harness import kubectl

AUDIENCE = "istio-ca"
ISTIOD_NAME = "istiod.istio-system.svc"
GENERATE = "bash scripts/gen-istio-ca-protos.sh"

try:
    from tests.helpers._generated.security.v1alpha1 import ca_pb2, ca_pb2_grpc
except ImportError as err:  # pragma: no cover - the message is the point
    raise ImportError(f"istiod's CA stubs are not generated; run: {GENERATE}") from err


@dataclass(frozen=True, slots=True)
class WorkloadCert:
    """What istiod answered: the leaf, what it sent after the leaf, and its root bundle."""

    leaf: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    """Every certificate after the leaf except the last element (the intermediate and the
    root that issued it, from ``cert-chain.pem``)."""
    roots: tuple[x509.Certificate, ...]
    """The last element: istiod's ``root-cert.pem`` (one or more roots)."""

    @property
    def spiffe_id(self) -> str:
        sans = self.leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        (uri,) = sans.get_values_for_type(x509.UniformResourceIdentifier)
        return uri


def service_account_token(
    kubeconfig: Path, context: str, namespace: str, account: str, audience: str = AUDIENCE
) -> str:
    """A short-lived bound token for ``namespace/account`` (TokenRequest API)."""
    kubectl(kubeconfig, context, "create", "namespace", namespace, check=False)
    kubectl(kubeconfig, context, "-n", namespace, "create", "serviceaccount", account, check=False)
    out = kubectl(
        kubeconfig, context, "-n", namespace, "create", "token", account,
        f"--audience={audience}", "--duration=10m",
    )  # fmt: skip
    return out.stdout.strip()


def _csr(spiffe_id: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "meshfed-test")]))
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(spiffe_id)]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def create_certificate(
    *,
    address: str,
    server_root: Path,
    token: str,
    cluster: str,
    spiffe_id: str,
    ttl_seconds: int = 3600,
    timeout: float = 20.0,
) -> WorkloadCert:
    """Call ``CreateCertificate`` on istiod's secure gRPC port (TLS verified against
    ``server_root``, the root of istiod's serving certificate)."""
    creds = grpc.ssl_channel_credentials(root_certificates=server_root.read_bytes())
    options = [("grpc.ssl_target_name_override", ISTIOD_NAME)]
    with grpc.secure_channel(address, creds, options=options) as channel:
        stub = ca_pb2_grpc.IstioCertificateServiceStub(channel)
        request = ca_pb2.IstioCertificateRequest(
            csr=_csr(spiffe_id).decode(), validity_duration=ttl_seconds
        )
        response = stub.CreateCertificate(
            request,
            metadata=(("authorization", f"Bearer {token}"), ("clusterid", cluster)),
            timeout=timeout,
        )
    parts = [x509.load_pem_x509_certificates(p.encode()) for p in response.cert_chain]
    assert len(parts) >= 2, f"istiod answered {len(parts)} chain elements"
    (leaf,) = parts[0]
    middle = tuple(c for part in parts[1:-1] for c in part)
    return WorkloadCert(leaf=leaf, chain=middle, roots=tuple(parts[-1]))

"""The sandbox's certificates and credentials, made with ``cryptography``.

One sandbox CA signs a serving certificate per apiserver (loopback and in-cluster names);
each cluster has its own service-account signing key; users authenticate with static
bearer tokens (``--token-auth-file``), which keeps kubeconfigs free of local file paths.
Everything is created once and reused, so ``up`` is idempotent and kubeconfigs stay valid.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from meshfed.trust.issue import ca_key_usage, key_pem
from meshfed.trust.store import write_file

VALIDITY = dt.timedelta(days=365)

ADMIN_USER = "meshfed-admin"
CONTROLLER_MANAGER_USER = "system:kube-controller-manager"
SCHEDULER_USER = "system:kube-scheduler"


@dataclass(frozen=True, slots=True)
class ClusterCredentials:
    """Paths and tokens for one cluster's components."""

    serving_cert: Path
    serving_key: Path
    sa_private_key: Path
    sa_public_key: Path
    token_file: Path
    admin_token: str
    controller_manager_token: str
    scheduler_token: str


def write_private(path: Path, data: bytes) -> None:
    write_file(path, data, private=True)


def load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TypeError(f"{path} is not an EC private key; delete the sandbox dir and retry")
    return key


def ensure_ca(pki_dir: Path) -> tuple[Path, Path]:
    """Create the sandbox CA once; return (cert, key) paths."""
    pki_dir.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = pki_dir / "ca.crt", pki_dir / "ca.key"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "meshfed-sandbox-ca")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            ca_key_usage(),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    write_private(key_path, key_pem(key))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def _serving_cert(
    *, ca_cert: Path, ca_key: Path, common_name: str, dns: list[str], ips: list[str]
) -> tuple[bytes, bytes]:
    ca = x509.load_pem_x509_certificate(ca_cert.read_bytes())
    signer = load_key(ca_key)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(signer, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem(key)


def _read_tokens(token_file: Path) -> dict[str, str]:
    """user -> token from a kube-apiserver static token file (token,user,uid[,"groups"])."""
    tokens: dict[str, str] = {}
    for line in token_file.read_text().splitlines():
        parts = line.split(",")
        if len(parts) >= 3:
            tokens[parts[1]] = parts[0]
    return tokens


def ensure_cluster_credentials(
    *, cluster_dir: Path, ca_cert: Path, ca_key: Path, cluster_name: str, service_ip: str
) -> ClusterCredentials:
    """Create (once) a cluster's serving cert, service-account keys and static tokens."""
    pki = cluster_dir / "pki"
    pki.mkdir(parents=True, exist_ok=True)
    serving_cert, serving_key = pki / "apiserver.crt", pki / "apiserver.key"
    if not (serving_cert.exists() and serving_key.exists()):
        serving_pem, serving_key_pem = _serving_cert(
            ca_cert=ca_cert,
            ca_key=ca_key,
            common_name=f"{cluster_name}-apiserver",
            dns=[
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ],
            ips=["127.0.0.1", service_ip],
        )
        write_private(serving_key, serving_key_pem)
        serving_cert.write_bytes(serving_pem)
    sa_key, sa_pub = pki / "sa.key", pki / "sa.pub"
    if not (sa_key.exists() and sa_pub.exists()):
        key = ec.generate_private_key(ec.SECP256R1())
        write_private(sa_key, key_pem(key))
        sa_pub.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    token_file = pki / "tokens.csv"
    if not token_file.exists():
        rows = [
            (ADMIN_USER, "system:masters"),
            (CONTROLLER_MANAGER_USER, ""),
            (SCHEDULER_USER, ""),
        ]
        lines = []
        for user, group in rows:
            token = secrets.token_hex(24)
            suffix = f',"{group}"' if group else ""
            lines.append(f"{token},{user},{user}{suffix}")
        write_private(token_file, ("\n".join(lines) + "\n").encode())
    tokens = _read_tokens(token_file)
    return ClusterCredentials(
        serving_cert=serving_cert,
        serving_key=serving_key,
        sa_private_key=sa_key,
        sa_public_key=sa_pub,
        token_file=token_file,
        admin_token=tokens[ADMIN_USER],
        controller_manager_token=tokens[CONTROLLER_MANAGER_USER],
        scheduler_token=tokens[SCHEDULER_USER],
    )

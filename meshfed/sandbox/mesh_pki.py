"""The mesh's certificates for ``up --istio``: one shared root, an intermediate CA per cluster.

This is Istio's "plug in CA certificates" recipe for multi-primary meshes, which an operator
follows so that workloads of different clusters trust each other: every istiod signs workload
certificates with its own intermediate (the ``cacerts`` Secret: ``ca-cert.pem``,
``ca-key.pem``, ``cert-chain.pem``, ``root-cert.pem``) and all chains end at one root. The
same intermediate signs istiod's serving certificate (127.0.0.1 and ``istiod.istio-system.svc``)
so the apiserver can call its validating webhook on loopback and pilot-agent can verify its
xDS server against the mesh root. Created once, reused by every later ``up``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from meshfed.sandbox.pki import (
    VALIDITY,
    ca_key_usage,
    load_key,
    private_key_pem,
    write_private,
)

ISTIOD_DNS = ("istiod.istio-system.svc", "istiod.istio-system.svc.cluster.local", "localhost")
MESH_ORG = "meshfed-sandbox-mesh"


@dataclass(frozen=True, slots=True)
class MeshCerts:
    """One cluster's plug-in CA files and istiod's serving certificate."""

    root_cert: Path
    ca_cert: Path
    ca_key: Path
    cert_chain: Path
    """The intermediate followed by the root, as Istio's ``cert-chain.pem`` wants it."""
    serving_cert: Path
    """istiod's serving certificate followed by the intermediate."""
    serving_key: Path

    def cacerts_data(self) -> dict[str, bytes]:
        """The ``cacerts`` Secret's keys, exactly as Istio's docs name them."""
        return {
            "ca-cert.pem": self.ca_cert.read_bytes(),
            "ca-key.pem": self.ca_key.read_bytes(),
            "cert-chain.pem": self.cert_chain.read_bytes(),
            "root-cert.pem": self.root_cert.read_bytes(),
        }


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
    )


def ensure_mesh_root(pki_dir: Path) -> tuple[Path, Path]:
    """The mesh root CA shared by every cluster's istiod; (cert, key) paths."""
    pki_dir.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = pki_dir / "mesh-root.crt", pki_dir / "mesh-root.key"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, MESH_ORG),
            x509.NameAttribute(NameOID.COMMON_NAME, "meshfed sandbox mesh root CA"),
        ]
    )
    cert = (
        _builder(name, name, key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(ca_key_usage(), critical=True)
        .sign(key, hashes.SHA256())
    )
    write_private(key_path, private_key_pem(key))
    cert_path.write_bytes(_pem(cert))
    return cert_path, key_path


def ensure_mesh_certs(
    *, istio_dir: Path, root_cert: Path, root_key: Path, cluster_name: str
) -> MeshCerts:
    """Create (once) ``cluster_name``'s intermediate CA and istiod's serving certificate."""
    istio_dir.mkdir(parents=True, exist_ok=True)
    certs = MeshCerts(
        root_cert=root_cert,
        ca_cert=istio_dir / "ca-cert.pem",
        ca_key=istio_dir / "ca-key.pem",
        cert_chain=istio_dir / "cert-chain.pem",
        serving_cert=istio_dir / "istiod.crt",
        serving_key=istio_dir / "istiod.key",
    )
    if all(p.exists() for p in (certs.ca_cert, certs.ca_key, certs.cert_chain)):
        ca_key = load_key(certs.ca_key)
        ca = x509.load_pem_x509_certificate(certs.ca_cert.read_bytes())
    else:
        root = x509.load_pem_x509_certificate(root_cert.read_bytes())
        ca_key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, MESH_ORG),
                x509.NameAttribute(NameOID.COMMON_NAME, f"{cluster_name} intermediate CA"),
            ]
        )
        ca = (
            _builder(subject, root.subject, ca_key)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(ca_key_usage(), critical=True)
            .sign(load_key(root_key), hashes.SHA256())
        )
        write_private(certs.ca_key, private_key_pem(ca_key))
        certs.ca_cert.write_bytes(_pem(ca))
        certs.cert_chain.write_bytes(_pem(ca) + root_cert.read_bytes())
    if not (certs.serving_cert.exists() and certs.serving_key.exists()):
        key = ec.generate_private_key(ec.SECP256R1())
        sans: list[x509.GeneralName] = [x509.DNSName(d) for d in ISTIOD_DNS]
        sans.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
        serving = (
            _builder(
                x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"istiod-{cluster_name}")]),
                ca.subject,
                key,
            )
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        write_private(certs.serving_key, private_key_pem(key))
        certs.serving_cert.write_bytes(_pem(serving) + _pem(ca))
    return certs

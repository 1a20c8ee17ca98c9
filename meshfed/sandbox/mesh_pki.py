"""The mesh's certificates for ``up --istio``: one shared root, an intermediate CA per cluster.

This is Istio's "plug in CA certificates" recipe for multi-primary meshes, made by the same
code as ``meshfed certs`` (:mod:`meshfed.trust`): the root and every cluster's ``cacerts``
files live in a certificates directory ``<sandbox>/pki/mesh`` that ``meshfed certs`` reads
and rotates, so the sandbox is also where that command is tried out. A cluster's entry there
(``clusters/<name>``) links to ``<sandbox>/<name>/pki/istio``, where its files have always been.

What stays here is the sandbox's own part: istiod's serving certificate (127.0.0.1 and
``istiod.istio-system.svc``, so the apiserver can call its validating webhook on loopback and
pilot-agent can verify its xDS server). A real istiod makes that certificate itself from its
plug-in CA (without the loopback address); here it is made the same way, from the ``cacerts``
istiod loads, and made again whenever that CA changes (a rotation), so istiod's serving
chain always ends at a root of the bundle it publishes. ``pki/mesh-root.crt`` is a copy of
the first root, for tools that want "the mesh root" of a sandbox that was never rotated.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from meshfed.sandbox.istio_manifests import TRUST_DOMAIN
from meshfed.sandbox.pki import VALIDITY
from meshfed.trust.bundle import PluginCa, plugin_ca
from meshfed.trust.issue import (
    CaSpec,
    IssuedCa,
    KeyType,
    cert_pem,
    issue_intermediate,
    issue_root,
    key_pem,
    load_cert,
    load_key,
    new_key,
)
from meshfed.trust.store import (
    ROOT_CERT_FILE,
    ROOT_KEY_FILE,
    TrustStore,
    read_plugin_files,
    write_file,
    write_plugin_files,
)

ISTIOD_DNS = ("istiod.istio-system.svc", "istiod.istio-system.svc.cluster.local", "localhost")
SERVING_ROOT = "mesh-root.crt"
"""A copy of the first root (tests and pilot-agent of an unrotated sandbox trust it)."""


@dataclass(frozen=True, slots=True)
class MeshCerts:
    """One cluster's plug-in CA files and istiod's serving certificate."""

    root_cert: Path
    ca_cert: Path
    ca_key: Path
    cert_chain: Path
    """The intermediate followed by the root, as Istio's ``cert-chain.pem`` wants it."""
    serving_cert: Path
    """istiod's serving certificate followed by the intermediate that signed it."""
    serving_key: Path

    def cacerts_data(self) -> dict[str, bytes]:
        """The ``cacerts`` Secret's keys, exactly as Istio's docs name them."""
        return {
            "ca-cert.pem": self.ca_cert.read_bytes(),
            "ca-key.pem": self.ca_key.read_bytes(),
            "cert-chain.pem": self.cert_chain.read_bytes(),
            "root-cert.pem": self.root_cert.read_bytes(),
        }


def mesh_store(pki_dir: Path) -> TrustStore:
    """The sandbox's certificates directory (``meshfed certs --dir`` works on it)."""
    return TrustStore(pki_dir / "mesh")


def ensure_mesh_root(pki_dir: Path) -> tuple[Path, Path]:
    """The mesh root CA shared by every cluster's istiod; (cert, key) paths."""
    store = mesh_store(pki_dir)
    if not store.has_root():
        store.write_root(issue_root(CaSpec(trust_domain=TRUST_DOMAIN), now=dt.datetime.now(dt.UTC)))
    serving_root = pki_dir / SERVING_ROOT
    if not serving_root.exists():
        write_file(serving_root, cert_pem(store.root().cert))
    return store.root_dir / ROOT_CERT_FILE, store.root_dir / ROOT_KEY_FILE


def link_cluster(store: TrustStore, name: str, istio_dir: Path) -> None:
    """Make ``istio_dir`` the store's directory of cluster ``name`` (a relative symlink)."""
    link = store.cluster_dir(name)
    if link.is_symlink() or link.exists():
        return
    link.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    link.symlink_to(os.path.relpath(istio_dir, link.parent), target_is_directory=True)


def _intermediate(istio_dir: Path, root_cert: Path, root_key: Path, cluster: str) -> PluginCa:
    found = read_plugin_files(istio_dir, where=f"{istio_dir}/")
    if found is not None:
        return found
    root = IssuedCa(
        cert=load_cert(root_cert.read_bytes(), field=str(root_cert)),
        key=load_key(root_key.read_bytes(), field=str(root_key)),
    )
    ca = issue_intermediate(
        root=root,
        cluster=cluster,
        spec=CaSpec(trust_domain=TRUST_DOMAIN, validity_days=VALIDITY.days),
        now=dt.datetime.now(dt.UTC),
    )
    plugin = plugin_ca(ca, issuer=root.cert, roots=(root.cert,))
    write_plugin_files(istio_dir, plugin)
    return plugin


def _serving(ca: PluginCa, cluster: str) -> tuple[bytes, bytes]:
    """istiod's serving certificate (+ the intermediate) and key, signed by ``ca``."""
    key = new_key(KeyType.ECDSA_P256)
    now = dt.datetime.now(dt.UTC)
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in ISTIOD_DNS]
    sans.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    eku = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    serving = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"istiod-{cluster}")]))
        .issuer_name(ca.ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + VALIDITY, ca.ca.cert.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage(eku), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca.ca.key, hashes.SHA256())
    )
    return cert_pem(serving) + ca.ca.cert_pem, key_pem(key)


def ensure_serving_cert(
    *, cacerts_dir: Path, serving_dir: Path, cluster_name: str
) -> tuple[Path, Path]:
    """istiod's serving certificate and key, (re-)issued by the CA in ``cacerts_dir`` unless
    the current one already is that CA's."""
    cert_path, key_path = serving_dir / "istiod.crt", serving_dir / "istiod.key"
    ca = read_plugin_files(cacerts_dir, where=f"{cacerts_dir}/")
    if ca is None:
        raise FileNotFoundError(f"no cacerts in {cacerts_dir}")
    if cert_path.exists() and key_path.exists():
        chain = x509.load_pem_x509_certificates(cert_path.read_bytes())
        if len(chain) == 2 and chain[1] == ca.ca.cert:
            return cert_path, key_path
    chain_pem, key = _serving(ca, cluster_name)
    write_file(key_path, key, private=True)
    write_file(cert_path, chain_pem)
    return cert_path, key_path


def ensure_mesh_certs(
    *,
    istio_dir: Path,
    root_cert: Path,
    root_key: Path,
    cluster_name: str,
    serving_dir: Path | None = None,
) -> MeshCerts:
    """Create (once) ``cluster_name``'s intermediate CA (in ``istio_dir``) and an istiod
    serving certificate signed by it (in ``serving_dir``, default ``istio_dir``)."""
    _intermediate(istio_dir, root_cert, root_key, cluster_name)
    serving_cert, serving_key = ensure_serving_cert(
        cacerts_dir=istio_dir, serving_dir=serving_dir or istio_dir, cluster_name=cluster_name
    )
    return MeshCerts(
        root_cert=istio_dir / "root-cert.pem",
        ca_cert=istio_dir / "ca-cert.pem",
        ca_key=istio_dir / "ca-key.pem",
        cert_chain=istio_dir / "cert-chain.pem",
        serving_cert=serving_cert,
        serving_key=serving_key,
    )

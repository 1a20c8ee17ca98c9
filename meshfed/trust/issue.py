"""Issuing the mesh's CAs: one root, one intermediate per cluster, as Istio's plug-in CA wants.

Pure: keys and certificates are made in memory with ``cryptography`` and returned; writing
them anywhere is :mod:`meshfed.trust.store`'s job. The shapes follow Istio's own tooling
(``tools/certs`` in the istio module): the root is ``CA:TRUE`` with ``keyCertSign``; each
intermediate is ``CA:TRUE, pathlen:0`` (it signs workload certificates only), carries the SAN
``istiod.istio-system.svc`` and the cluster's name as its locality. The trust domain is the
subject's organization, as istiod's own self-signed root does, so a certificate says which
trust domain it was made for and mismatches are caught before anything is written.

Every input is checked first and refused with a :class:`CertsError` naming the field.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import secrets
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import NameOID

from meshfed.trust.errors import CertsError

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
DEFAULT_TRUST_DOMAIN = "cluster.local"
ISTIOD_SAN = "istiod.istio-system.svc"
BACKDATE = dt.timedelta(minutes=5)
"""Certificates start a little in the past so a peer whose clock is behind accepts them."""
MAX_VALIDITY_DAYS = 36500
_TRUST_DOMAIN = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,253}[a-z0-9])?$")
_CLUSTER = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


class KeyType(enum.Enum):
    """Key algorithm of a CA. ECDSA P-256 is Istio's default for workloads and small/fast;
    RSA for meshes whose peers or policies require it."""

    ECDSA_P256 = "ecdsa-p256"
    RSA_2048 = "rsa-2048"
    RSA_3072 = "rsa-3072"
    RSA_4096 = "rsa-4096"


@dataclass(frozen=True, slots=True)
class CaSpec:
    """What to issue: trust domain, key type and validity."""

    trust_domain: str = DEFAULT_TRUST_DOMAIN
    """The mesh's trust domain (istiod's ``meshConfig.trustDomain``); workload identities are
    ``spiffe://<trust_domain>/ns/<ns>/sa/<sa>``."""
    key_type: KeyType = KeyType.ECDSA_P256
    """Key algorithm of the new CA's key."""
    validity_days: int = 3650
    """Lifetime of the new certificate, in days (an intermediate must not outlive its root)."""

    def validate(self) -> None:
        """Raise :class:`CertsError` naming the first invalid option."""
        if not _TRUST_DOMAIN.match(self.trust_domain):
            raise CertsError(
                "--trust-domain",
                f"{self.trust_domain!r} is not a trust domain: lowercase letters, digits, "
                "'.', '-' and '_', as in 'cluster.local'",
            )
        if not 1 <= self.validity_days <= MAX_VALIDITY_DAYS:
            raise CertsError(
                "--validity-days",
                f"{self.validity_days} is out of range: use 1..{MAX_VALIDITY_DAYS}",
            )


@dataclass(frozen=True, slots=True)
class IssuedCa:
    """A CA certificate and its private key (never printed: the key is left out of repr)."""

    cert: x509.Certificate
    key: PrivateKey = field(repr=False)

    @property
    def cert_pem(self) -> bytes:
        return cert_pem(self.cert)

    @property
    def key_pem(self) -> bytes:
        return key_pem(self.key)


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: PrivateKey) -> bytes:
    """PKCS#8 PEM, unencrypted: what Istio's ``ca-key.pem`` holds."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_key(data: bytes, *, field: str) -> PrivateKey:
    """A PEM private key; :class:`CertsError` naming ``field`` if it is not an EC/RSA key."""
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as err:
        raise CertsError(field, "is not an unencrypted PEM private key") from err
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise CertsError(field, f"holds a {type(key).__name__}; only ECDSA and RSA are supported")
    return key


def load_cert(data: bytes, *, field: str) -> x509.Certificate:
    """Exactly one PEM certificate."""
    certs = load_certs(data, field=field)
    if len(certs) != 1:
        raise CertsError(field, f"holds {len(certs)} certificates, expected exactly one")
    return certs[0]


def load_certs(data: bytes, *, field: str) -> list[x509.Certificate]:
    """One or more PEM certificates, in file order."""
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as err:
        raise CertsError(field, "is not a PEM certificate (bundle)") from err
    return certs


def new_key(key_type: KeyType) -> PrivateKey:
    if key_type is KeyType.ECDSA_P256:
        return ec.generate_private_key(ec.SECP256R1())
    bits = int(key_type.value.removeprefix("rsa-"))
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def ca_key_usage() -> x509.KeyUsage:
    """Key usage of a CA certificate: signs certificates and CRLs, nothing else."""
    return x509.KeyUsage(
        digital_signature=True,
        key_cert_sign=True,
        crl_sign=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        encipher_only=False,
        decipher_only=False,
    )


def trust_domain_of(cert: x509.Certificate) -> str | None:
    """The trust domain a meshfed CA was issued for (its subject's organization)."""
    orgs = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return str(orgs[0].value) if orgs else None


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def check_ca(ca: IssuedCa, *, now: dt.datetime, cert_field: str, key_field: str) -> None:
    """What a signing CA must be: a CA certificate allowed to sign, valid now, and the
    certificate of the key it comes with."""
    cert = ca.cert
    if not is_ca(cert):
        raise CertsError(cert_field, "is not a CA certificate (basicConstraints CA:TRUE missing)")
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        if not usage.key_cert_sign:
            raise CertsError(cert_field, "may not sign certificates (keyUsage lacks keyCertSign)")
    except x509.ExtensionNotFound:
        pass  # no keyUsage extension: every usage is allowed
    if now >= cert.not_valid_after_utc:
        raise CertsError(cert_field, f"expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
    if now < cert.not_valid_before_utc:
        raise CertsError(
            cert_field, f"is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
        )
    if _spki(ca.key.public_key()) != _spki(cert.public_key()):
        raise CertsError(key_field, f"is not the key of {cert_field}")


def _spki(public_key: CertificatePublicKeyTypes) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _name(trust_domain: str, common_name: str, locality: str = "") -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, trust_domain)]
    if locality:
        attrs.append(x509.NameAttribute(NameOID.LOCALITY_NAME, locality))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def _builder(
    *, subject: x509.Name, issuer: x509.Name, key: PrivateKey, now: dt.datetime, days: int
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(ca_key_usage(), critical=True)
    )


def issue_root(spec: CaSpec, *, now: dt.datetime) -> IssuedCa:
    """A new self-signed root. Its common name carries a random tag, so an old and a new root
    (during a rotation) never share a subject (intermediates carry one for the same reason)."""
    spec.validate()
    key = new_key(spec.key_type)
    name = _name(spec.trust_domain, f"meshfed root CA {secrets.token_hex(4)}")
    cert = (
        _builder(subject=name, issuer=name, key=key, now=now, days=spec.validity_days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return IssuedCa(cert=cert, key=key)


def check_cluster_name(name: str, *, field: str = "--cluster") -> None:
    if not _CLUSTER.match(name):
        raise CertsError(field, f"{name!r} is not a cluster name (a DNS label, like 'c1')")


def issue_intermediate(*, root: IssuedCa, cluster: str, spec: CaSpec, now: dt.datetime) -> IssuedCa:
    """``cluster``'s intermediate CA under ``root``, after checking every input."""
    spec.validate()
    check_cluster_name(cluster)
    check_ca(root, now=now, cert_field="root-cert.pem", key_field="root-key.pem")
    root_domain = trust_domain_of(root.cert)
    if root_domain is not None and root_domain != spec.trust_domain:
        raise CertsError(
            "--trust-domain",
            f"{spec.trust_domain!r} differs from the root's trust domain {root_domain!r}",
        )
    ends = now + dt.timedelta(days=spec.validity_days)
    if ends > root.cert.not_valid_after_utc:
        left = (root.cert.not_valid_after_utc - now).days
        raise CertsError(
            "--validity-days",
            f"{spec.validity_days} days would outlive the root (it expires "
            f"{root.cert.not_valid_after_utc:%Y-%m-%d}); use at most {left}",
        )
    key = new_key(spec.key_type)
    cert = (
        _builder(
            subject=_name(
                spec.trust_domain,
                f"{cluster} intermediate CA {secrets.token_hex(4)}",
                locality=cluster,
            ),
            issuer=root.cert.subject,
            key=key,
            now=now,
            days=spec.validity_days,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root.key.public_key()),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(ISTIOD_SAN)]), critical=False)
        .sign(root.key, hashes.SHA256())
    )
    return IssuedCa(cert=cert, key=key)

"""One cluster's plug-in CA (Istio's ``cacerts`` Secret) and chain verification.

The four files, as Istio documents them: ``ca-cert.pem`` (the cluster's intermediate),
``ca-key.pem`` (its key), ``cert-chain.pem`` (the intermediate first, ending at the root that
issued it) and ``root-cert.pem`` (the trust bundle: one root, or the old and the new root
during a rotation). :func:`check_plugin_ca` checks what istiod checks when it loads them
(its ``KeyCertBundle`` verification) so nothing meshfed writes is refused by istiod, and
:func:`verify_chain` is the path check the status command and the tests use.

Pure: bytes in, dataclasses out.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from meshfed.trust.errors import CertsError
from meshfed.trust.issue import (
    IssuedCa,
    cert_pem,
    check_ca,
    is_ca,
    load_cert,
    load_certs,
    load_key,
)

CA_CERT = "ca-cert.pem"
CA_KEY = "ca-key.pem"
CERT_CHAIN = "cert-chain.pem"
ROOT_CERT = "root-cert.pem"
FILES = (CA_CERT, CA_KEY, CERT_CHAIN, ROOT_CERT)
ISTIO_NAMESPACE = "istio-system"
CACERTS = "cacerts"
FIELD_MANAGER = "meshfed-certs"
"""Server-side apply field manager of the Secrets ``meshfed certs`` writes."""
MAX_PATH = 6


@dataclass(frozen=True, slots=True)
class PluginCa:
    """One cluster's ``cacerts``: its intermediate CA, the chain and the trust bundle."""

    ca: IssuedCa
    chain: tuple[x509.Certificate, ...]
    """``cert-chain.pem``: the intermediate first, then up to the root that issued it."""
    roots: tuple[x509.Certificate, ...]
    """``root-cert.pem``: every root the cluster trusts (two during a rotation)."""

    def files(self) -> dict[str, bytes]:
        """The Secret's keys and their PEM contents (``ca-key.pem`` is the private key)."""
        return {
            CA_CERT: self.ca.cert_pem,
            CA_KEY: self.ca.key_pem,
            CERT_CHAIN: b"".join(cert_pem(c) for c in self.chain),
            ROOT_CERT: b"".join(cert_pem(c) for c in self.roots),
        }

    @classmethod
    def from_files(cls, files: Mapping[str, bytes], *, where: str = "") -> PluginCa:
        """Parse the four files; ``where`` prefixes the field named in errors
        (``clusters[c1].``)."""
        missing = [f for f in FILES if not files.get(f)]
        if missing:
            raise CertsError(f"{where}{missing[0]}", "is missing or empty")
        ca = IssuedCa(
            cert=load_cert(files[CA_CERT], field=f"{where}{CA_CERT}"),
            key=load_key(files[CA_KEY], field=f"{where}{CA_KEY}"),
        )
        return cls(
            ca=ca,
            chain=tuple(load_certs(files[CERT_CHAIN], field=f"{where}{CERT_CHAIN}")),
            roots=tuple(load_certs(files[ROOT_CERT], field=f"{where}{ROOT_CERT}")),
        )


def cacerts_manifest(files: Mapping[str, bytes]) -> dict[str, Any]:
    """The ``istio-system/cacerts`` Secret (Istio's plug-in CA format) holding ``files``."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": CACERTS,
            "namespace": ISTIO_NAMESPACE,
            "labels": {"app.kubernetes.io/managed-by": FIELD_MANAGER},
        },
        "data": {k: base64.b64encode(v).decode() for k, v in sorted(files.items())},
    }


def plugin_ca(
    intermediate: IssuedCa, *, issuer: x509.Certificate, roots: Sequence[x509.Certificate]
) -> PluginCa:
    """The ``cacerts`` of an intermediate issued by root ``issuer``, trusting ``roots``."""
    return PluginCa(ca=intermediate, chain=(intermediate.cert, issuer), roots=tuple(roots))


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER certificate, hex (how the status and the tests name a root)."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def unique(certs: Iterable[x509.Certificate]) -> tuple[x509.Certificate, ...]:
    """``certs`` without repeats, first occurrence kept."""
    seen: dict[str, x509.Certificate] = {}
    for cert in certs:
        seen.setdefault(fingerprint(cert), cert)
    return tuple(seen.values())


def common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else cert.subject.rfc4514_string()


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """``issuer``'s key signed ``cert`` (names match and the signature verifies)."""
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _check_time(cert: x509.Certificate, now: dt.datetime, field: str) -> None:
    if now >= cert.not_valid_after_utc:
        raise CertsError(
            field, f"{common_name(cert)!r} expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
        )
    if now < cert.not_valid_before_utc:
        raise CertsError(field, f"{common_name(cert)!r} is not valid yet")


def verify_chain(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    *,
    now: dt.datetime,
    field: str,
) -> tuple[x509.Certificate, ...]:
    """The path from ``leaf`` through ``intermediates`` to one of ``roots`` (every signature,
    validity period and CA flag checked); :class:`CertsError` naming ``field`` if there is
    none."""
    if not roots:
        raise CertsError(field, "no root to verify against (empty trust bundle)")
    path = [leaf]
    _check_time(leaf, now, field)
    for _ in range(MAX_PATH):
        current = path[-1]
        for root in roots:
            if is_ca(root) and issued_by(current, root) and issued_by(root, root):
                _check_time(root, now, field)
                return (*path, root)
        step = next(
            (
                c
                for c in intermediates
                if is_ca(c) and c not in path and c not in roots and issued_by(current, c)
            ),
            None,
        )
        if step is None:
            break
        _check_time(step, now, field)
        path.append(step)
    names = ", ".join(repr(common_name(r)) for r in roots)
    raise CertsError(field, f"{common_name(leaf)!r} does not chain to any trusted root ({names})")


def check_plugin_ca(ca: PluginCa, *, now: dt.datetime, where: str = "") -> x509.Certificate:
    """What istiod checks when it loads ``cacerts``, plus what a mesh needs: the intermediate
    can sign, matches its key, ``cert-chain.pem`` starts with it and ends at a root of the
    bundle, every root is a self-signed CA. Returns the root the intermediate chains to."""
    check_ca(ca.ca, now=now, cert_field=f"{where}{CA_CERT}", key_field=f"{where}{CA_KEY}")
    if not ca.chain or ca.chain[0] != ca.ca.cert:
        raise CertsError(f"{where}{CERT_CHAIN}", f"must start with {CA_CERT}")
    for root in ca.roots:
        if not (is_ca(root) and issued_by(root, root)):
            raise CertsError(
                f"{where}{ROOT_CERT}", f"{common_name(root)!r} is not a self-signed CA"
            )
    path = verify_chain(ca.ca.cert, ca.chain[1:], ca.roots, now=now, field=f"{where}{CERT_CHAIN}")
    if ca.chain[-1] != path[-1] and ca.chain[-1] not in ca.roots:
        raise CertsError(f"{where}{CERT_CHAIN}", "must end at the root that issued it")
    return path[-1]

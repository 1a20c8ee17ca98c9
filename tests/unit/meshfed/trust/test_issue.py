"""Issuing the root and the clusters' intermediates: shapes Istio expects, and every bad input
refused with the field it concerns."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from meshfed.trust.errors import CertsError
from meshfed.trust.issue import (
    ISTIOD_SAN,
    CaSpec,
    IssuedCa,
    KeyType,
    issue_intermediate,
    issue_root,
    trust_domain_of,
)
from tests.unit.meshfed.trust.conftest import NOW


def _ext(
    cert: x509.Certificate, kind: type[x509.ExtensionType]
) -> x509.Extension[x509.ExtensionType]:
    return cert.extensions.get_extension_for_class(kind)


@pytest.mark.parametrize(
    ("key_type", "key_class", "size"),
    [
        pytest.param(KeyType.ECDSA_P256, ec.EllipticCurvePrivateKey, 256, id="ecdsa-p256"),
        pytest.param(KeyType.RSA_2048, rsa.RSAPrivateKey, 2048, id="rsa-2048"),
    ],
)
def test_root_and_intermediate_have_istios_plug_in_shape(
    key_type: KeyType, key_class: type, size: int
) -> None:
    spec = CaSpec(trust_domain="mesh.example", key_type=key_type, validity_days=30)
    root = issue_root(dataclasses.replace(spec, validity_days=3650), now=NOW)
    ca = issue_intermediate(root=root, cluster="c1", spec=spec, now=NOW)
    for issued in (root, ca):
        assert isinstance(issued.key, key_class)
        assert issued.key.key_size == size
        usage = _ext(issued.cert, x509.KeyUsage)
        assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
        assert trust_domain_of(issued.cert) == "mesh.example"
    root_bc, ca_bc = _ext(root.cert, x509.BasicConstraints), _ext(ca.cert, x509.BasicConstraints)
    assert root_bc.critical and root_bc.value.ca and root_bc.value.path_length is None
    assert ca_bc.critical and ca_bc.value.ca and ca_bc.value.path_length == 0
    ca.cert.verify_directly_issued_by(root.cert)
    root.cert.verify_directly_issued_by(root.cert)
    assert ca.cert.subject.get_attributes_for_oid(NameOID.LOCALITY_NAME)[0].value == "c1"
    sans = _ext(ca.cert, x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == [ISTIOD_SAN]
    assert ca.cert.not_valid_after_utc == NOW + dt.timedelta(days=30)
    aki = _ext(ca.cert, x509.AuthorityKeyIdentifier).value.key_identifier
    assert aki == _ext(root.cert, x509.SubjectKeyIdentifier).value.digest


def test_two_roots_never_share_a_subject() -> None:
    a, b = (issue_root(CaSpec(), now=NOW) for _ in range(2))
    assert a.cert.subject != b.cert.subject


def test_the_key_is_not_in_the_repr(root: IssuedCa) -> None:
    assert "key" not in repr(root).replace("public_key", "")
    assert "PRIVATE KEY" not in repr(root)


def _expired(now: dt.datetime) -> IssuedCa:
    return issue_root(CaSpec(validity_days=1), now=now - dt.timedelta(days=3))


def _other_key(root: IssuedCa) -> IssuedCa:
    return IssuedCa(cert=root.cert, key=issue_root(CaSpec(), now=NOW).key)


def _leaf_as_root(root: IssuedCa) -> IssuedCa:
    cert = (
        x509.CertificateBuilder().subject_name(root.cert.subject).issuer_name(root.cert.subject)
        .public_key(root.key.public_key()).serial_number(1)
        .not_valid_before(NOW - dt.timedelta(days=1)).not_valid_after(NOW + dt.timedelta(days=9))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(root.key, hashes.SHA256())
    )  # fmt: skip
    return IssuedCa(cert=cert, key=root.key)


@pytest.mark.parametrize(
    ("make_root", "spec", "cluster", "field", "words"),
    [
        pytest.param(lambda r: _expired(NOW), CaSpec(), "c1", "root-cert.pem", "expired",
                     id="expired-root"),
        pytest.param(_leaf_as_root, CaSpec(), "c1", "root-cert.pem", "not a CA", id="non-ca-root"),
        pytest.param(_other_key, CaSpec(), "c1", "root-key.pem", "not the key", id="foreign-key"),
        pytest.param(lambda r: r, CaSpec(trust_domain="other.example"), "c1", "--trust-domain",
                     "differs from the root", id="mismatched-trust-domain"),
        pytest.param(lambda r: r, CaSpec(trust_domain="Not Valid"), "c1", "--trust-domain",
                     "not a trust domain", id="bad-trust-domain"),
        pytest.param(lambda r: r, CaSpec(validity_days=0), "c1", "--validity-days", "out of range",
                     id="zero-days"),
        pytest.param(lambda r: r, CaSpec(validity_days=4000), "c1", "--validity-days",
                     "outlive the root", id="outlives-root"),
        pytest.param(lambda r: r, CaSpec(), "C_1", "--cluster", "not a cluster name",
                     id="bad-cluster-name"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_naming_the_field(
    root: IssuedCa, make_root: object, spec: CaSpec, cluster: str, field: str, words: str
) -> None:
    signer = make_root(root)  # type: ignore[operator]
    with pytest.raises(CertsError) as err:
        issue_intermediate(root=signer, cluster=cluster, spec=spec, now=NOW)
    assert err.value.field == field
    assert words in err.value.reason
    assert str(err.value).startswith(f"{field}: ")


def test_a_root_not_yet_valid_is_refused(root: IssuedCa) -> None:
    with pytest.raises(CertsError, match="not valid before") as err:
        issue_intermediate(root=root, cluster="c1", spec=CaSpec(), now=NOW - dt.timedelta(days=1))
    assert err.value.field == "root-cert.pem"

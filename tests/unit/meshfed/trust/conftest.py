"""Shared builders for the trust core's tests: a fixed clock, a mesh of CAs, workload leaves."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from meshfed.trust.bundle import PluginCa, plugin_ca
from meshfed.trust.issue import CaSpec, IssuedCa, issue_intermediate, issue_root

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


def leaf_of(
    ca: IssuedCa, spiffe: str = "spiffe://cluster.local/ns/default/sa/app"
) -> x509.Certificate:
    """A workload certificate signed by ``ca``, as istiod makes them."""
    key = ec.generate_private_key(ec.SECP256R1())
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(minutes=1))
        .not_valid_after(NOW + dt.timedelta(hours=24))
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(spiffe)]), critical=True
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca.key, hashes.SHA256())
    )


def cluster_ca(root: IssuedCa, name: str, spec: CaSpec | None = None) -> PluginCa:
    ca = issue_intermediate(
        root=root, cluster=name, spec=spec or CaSpec(validity_days=365), now=NOW
    )
    return plugin_ca(ca, issuer=root.cert, roots=(root.cert,))


@pytest.fixture(scope="module")
def root() -> IssuedCa:
    return issue_root(CaSpec(), now=NOW)


@pytest.fixture(scope="module")
def mesh(root: IssuedCa) -> dict[str, PluginCa]:
    return {name: cluster_ca(root, name) for name in ("c1", "c2")}

"""The mesh's plug-in CA chain, and the ``sandbox status --json`` shape other tools read."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from cryptography import x509

from meshfed.sandbox.mesh_pki import ensure_mesh_certs, ensure_mesh_root
from meshfed.sandbox.status import ClusterStatus, IstiodStatus


def _load_all(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def test_every_cluster_chains_to_one_root_and_is_reused(tmp_path: Path) -> None:
    root_cert, root_key = ensure_mesh_root(tmp_path / "pki")
    root = x509.load_pem_x509_certificate(root_cert.read_bytes())
    certs = [
        ensure_mesh_certs(
            istio_dir=tmp_path / c, root_cert=root_cert, root_key=root_key, cluster_name=c
        )
        for c in ("c1", "c2")
    ]
    for mc in certs:
        (ca,) = _load_all(mc.ca_cert)
        ca.verify_directly_issued_by(root)
        assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert _load_all(mc.cert_chain) == [ca, root]
        serving, intermediate = _load_all(mc.serving_cert)
        serving.verify_directly_issued_by(intermediate)
        sans = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert ipaddress.ip_address("127.0.0.1") in sans.get_values_for_type(x509.IPAddress)
        assert "istiod.istio-system.svc" in sans.get_values_for_type(x509.DNSName)
        assert set(mc.cacerts_data()) == {
            "ca-cert.pem",
            "ca-key.pem",
            "cert-chain.pem",
            "root-cert.pem",
        }
    again = ensure_mesh_certs(
        istio_dir=tmp_path / "c1", root_cert=root_cert, root_key=root_key, cluster_name="c1"
    )
    assert again.ca_cert.read_bytes() == certs[0].ca_cert.read_bytes()
    assert ensure_mesh_root(tmp_path / "pki") == (root_cert, root_key)


def _row(istiod: IstiodStatus | None) -> ClusterStatus:
    return ClusterStatus(
        name="c3", region="region-b", zone="region-b-1", network="network-c3",
        server="https://127.0.0.1:25030", processes={"kwok": True, "istiod": True},
        ready=True, rss_bytes=1, istiod=istiod,
    )  # fmt: skip


def test_status_json_has_istiod_xds_only_with_istio() -> None:
    istiod = IstiodStatus(
        xds="127.0.0.1:25034", secure_xds="127.0.0.1:25038", debug="http://127.0.0.1:25036",
        metrics="http://127.0.0.1:25037/metrics", webhook="https://127.0.0.1:25035/validate",
        running=True, ready=True, rss_bytes=2,
    )  # fmt: skip
    with_istio = _row(istiod).to_dict()
    assert next(iter(with_istio)) == "name"
    assert with_istio["istiod"]["xds"] == "127.0.0.1:25034"
    assert "istiod" not in _row(None).to_dict()


def test_a_cluster_with_istiod_not_ready_is_unhealthy() -> None:
    down = IstiodStatus(
        xds="x", secure_xds="x", debug="x", metrics="x", webhook="x",
        running=True, ready=False, rss_bytes=0,
    )  # fmt: skip
    assert not _row(down).healthy
    assert _row(None).healthy

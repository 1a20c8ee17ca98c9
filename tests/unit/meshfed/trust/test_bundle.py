"""The ``cacerts`` files and chain verification: what istiod would refuse is refused first."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from meshfed.trust.bundle import (
    FILES,
    PluginCa,
    cacerts_manifest,
    check_plugin_ca,
    fingerprint,
    verify_chain,
)
from meshfed.trust.errors import CertsError
from meshfed.trust.issue import CaSpec, IssuedCa, issue_root
from tests.unit.meshfed.trust.conftest import NOW, cluster_ca, leaf_of


def test_files_round_trip_and_name_the_secret_keys(mesh: dict[str, PluginCa]) -> None:
    ca = mesh["c1"]
    files = ca.files()
    assert tuple(files) == FILES
    assert files["ca-key.pem"].startswith(b"-----BEGIN PRIVATE KEY-----")
    again = PluginCa.from_files(files)
    assert again.ca.cert == ca.ca.cert and again.chain == ca.chain and again.roots == ca.roots
    secret = cacerts_manifest(files)
    assert secret["metadata"] | {"labels": None} == {
        "name": "cacerts", "namespace": "istio-system", "labels": None,
    }  # fmt: skip
    assert sorted(secret["data"]) == sorted(FILES)


def test_a_leaf_of_one_cluster_verifies_against_anothers_bundle(
    root: IssuedCa, mesh: dict[str, PluginCa]
) -> None:
    leaf = leaf_of(mesh["c1"].ca)
    path = verify_chain(leaf, (*mesh["c1"].chain[1:], mesh["c1"].ca.cert), mesh["c2"].roots,
                        now=NOW, field="leaf")  # fmt: skip
    assert path == (leaf, mesh["c1"].ca.cert, root.cert)
    assert check_plugin_ca(mesh["c2"], now=NOW) == root.cert


def test_a_leaf_of_another_mesh_does_not_verify(mesh: dict[str, PluginCa]) -> None:
    stranger = cluster_ca(issue_root(CaSpec(), now=NOW), "c9")
    leaf = leaf_of(stranger.ca)
    with pytest.raises(CertsError, match="does not chain to any trusted root") as err:
        verify_chain(leaf, [stranger.ca.cert], mesh["c2"].roots, now=NOW, field="c9 leaf")
    assert err.value.field == "c9 leaf"


def test_an_expired_leaf_does_not_verify(mesh: dict[str, PluginCa]) -> None:
    leaf = leaf_of(mesh["c1"].ca)
    with pytest.raises(CertsError, match="expired"):
        verify_chain(leaf, [mesh["c1"].ca.cert], mesh["c1"].roots,
                     now=NOW + dt.timedelta(days=2), field="leaf")  # fmt: skip


def _swap(plugin: PluginCa, **changes: object) -> PluginCa:
    return dataclasses.replace(plugin, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("broken", "field", "words"),
    [
        pytest.param(lambda m, s: _swap(m["c1"], chain=(m["c2"].ca.cert, *m["c1"].chain[1:])),
                     "cert-chain.pem", "must start with ca-cert.pem", id="chain-of-another-ca"),
        pytest.param(lambda m, s: _swap(m["c1"], roots=s.roots), "cert-chain.pem",
                     "does not chain", id="bundle-without-its-root"),
        pytest.param(lambda m, s: _swap(m["c1"], roots=(*m["c1"].roots, m["c1"].ca.cert)),
                     "root-cert.pem", "not a self-signed CA", id="intermediate-in-bundle"),
        pytest.param(lambda m, s: _swap(m["c1"], ca=IssuedCa(m["c1"].ca.cert, m["c2"].ca.key)),
                     "ca-key.pem", "not the key", id="key-of-another-ca"),
    ],
)  # fmt: skip
def test_what_istiod_would_refuse_is_refused(
    mesh: dict[str, PluginCa], broken: object, field: str, words: str
) -> None:
    stranger = cluster_ca(issue_root(CaSpec(), now=NOW), "c9")
    with pytest.raises(CertsError) as err:
        check_plugin_ca(broken(mesh, stranger), now=NOW, where="clusters[c1].")  # type: ignore[operator]
    assert err.value.field == f"clusters[c1].{field}"
    assert words in err.value.reason


def test_missing_or_garbage_files_name_the_file(mesh: dict[str, PluginCa]) -> None:
    files = mesh["c1"].files()
    with pytest.raises(CertsError, match="missing") as err:
        PluginCa.from_files({k: v for k, v in files.items() if k != "cert-chain.pem"}, where="x.")
    assert err.value.field == "x.cert-chain.pem"
    with pytest.raises(CertsError) as err:
        PluginCa.from_files({**files, "ca-key.pem": b"not a key"})
    assert err.value.field == "ca-key.pem"


def test_fingerprint_is_sha256_of_der(root: IssuedCa) -> None:
    assert len(fingerprint(root.cert)) == 64

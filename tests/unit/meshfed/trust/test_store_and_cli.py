"""The files on disk and the ``meshfed certs`` commands that only touch files (typer's
CliRunner, in process, no sockets): keys are 0600, nothing prints a key, refusals exit 2
naming the field and write nothing, and a whole rotation converges."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509
from typer.testing import CliRunner

from meshfed.trust.cli import app
from meshfed.trust.errors import CertsError
from meshfed.trust.issue import CaSpec, issue_root
from meshfed.trust.store import TrustStore
from tests.unit.meshfed.trust.conftest import NOW


def certs(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args))
    output = result.output
    assert "PRIVATE KEY" not in output, "key material printed"
    assert result.exit_code == code, output
    return " ".join(output.split())


def _files(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()
    }


def test_keys_are_private_and_the_root_is_not_overwritten(tmp_path: Path) -> None:
    store = TrustStore(tmp_path)
    store.write_root(issue_root(CaSpec(), now=NOW))
    key = tmp_path / "root" / "root-key.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "root").stat().st_mode) == 0o700
    with pytest.raises(CertsError, match="rotate") as err:
        store.write_root(issue_root(CaSpec(), now=NOW))
    assert err.value.field == "--dir"


def test_init_issue_status_rotate_finish(tmp_path: Path) -> None:
    d = str(tmp_path)
    out = certs("init", "--dir", d, "--trust-domain", "mesh.example", "--key-type", "rsa-2048")
    assert "O=mesh.example" in out
    certs("issue", "--dir", d, "--cluster", "c1", "--cluster", "c2", "--validity-days", "30")
    for name in ("c1", "c2"):
        assert stat.S_IMODE((tmp_path / "clusters" / name / "ca-key.pem").stat().st_mode) == 0o600
    assert "kept" in certs("issue", "--dir", d, "--cluster", "c1")
    assert "same root" in certs("status", "--dir", d)
    old_root = TrustStore(tmp_path).root().cert

    certs("rotate", "--dir", d, "--phase", "bundle")
    new_root = TrustStore(tmp_path).next_root()
    assert new_root is not None
    bundle = x509.load_pem_x509_certificates((tmp_path / "clusters/c1/root-cert.pem").read_bytes())
    assert bundle == [old_root, new_root.cert]
    assert "same root" in certs("status", "--dir", d)
    assert "in progress" in certs("issue", "--dir", d, "--cluster", "c3", code=2)

    certs("rotate", "--dir", d, "--phase", "finish")
    store = TrustStore(tmp_path)
    assert store.root().cert == new_root.cert and store.next_root() is None
    assert (tmp_path / "clusters/c2/root-cert.pem").read_bytes() == new_root.cert_pem
    retired = list((tmp_path / "retired").rglob("*"))
    assert [p.name for p in retired if p.is_file()] == ["root-cert.pem"]  # no old key kept
    text = tmp_path / "metrics.prom"
    certs("status", "--dir", d, "--prometheus", str(text))
    assert "meshfed_certs_same_root 1.0" in text.read_text()


@pytest.mark.parametrize(
    ("args", "field"),
    [
        pytest.param(["init", "--trust-domain", "UPPER"], "--trust-domain", id="bad-trust-domain"),
        pytest.param(["init", "--validity-days", "0"], "--validity-days", id="bad-validity"),
        pytest.param(["issue", "--cluster", "c1"], "--dir", id="issue-without-root"),
        pytest.param(["rotate", "--phase", "finish"], "--dir", id="rotate-without-root"),
    ],
)
def test_refusals_exit_2_name_the_field_and_write_nothing(
    tmp_path: Path, args: list[str], field: str
) -> None:
    out = certs(*args, "--dir", str(tmp_path / "d"), code=2)
    assert out.startswith(f"refused {field}: "), out
    assert not (tmp_path / "d").exists() or not _files(tmp_path / "d")


def test_finish_without_a_rotation_and_status_of_a_split_mesh(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for d, name in ((a, "c1"), (b, "c2")):
        certs("init", "--dir", str(d))
        certs("issue", "--dir", str(d), "--cluster", name)
    before = _files(a)
    assert "refused --phase" in certs("rotate", "--dir", str(a), "--phase", "finish", code=2)
    assert _files(a) == before
    # c2's files from another mesh: status sees two roots and exits 1
    (a / "clusters" / "c2").mkdir()
    for f in (b / "clusters" / "c2").iterdir():
        (a / "clusters" / "c2" / f.name).write_bytes(f.read_bytes())
    assert "do NOT share one root" in certs("status", "--dir", str(a), code=1)


def test_apply_refuses_clusters_of_different_roots_before_connecting(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for d, name in ((a, "c1"), (b, "c2")):
        certs("init", "--dir", str(d))
        certs("issue", "--dir", str(d), "--cluster", name)
    (a / "clusters" / "c2").mkdir()
    for f in (b / "clusters" / "c2").iterdir():
        (a / "clusters" / "c2" / f.name).write_bytes(f.read_bytes())
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    config = tmp_path / "federation.yaml"
    config.write_text(
        "apiVersion: meshfed.io/v1alpha1\nkind: FederationConfig\nclusters:\n"
        + "".join(
            f"- name: {n}\n  kubeconfig: {{path: {kubeconfig}, context: {n}}}\n"
            for n in ("c1", "c2")
        )
    )
    out = certs("apply", "--dir", str(a), "--config", str(config), code=2)
    assert out.startswith("refused --dir: the clusters chain to different roots"), out

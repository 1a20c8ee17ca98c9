"""``meshfed certs`` against real istiods: the plug-in CA they sign with, and a root rotation.

A two-cluster sandbox of its own (the rotation changes the mesh root, which the session's
``istio_sandbox`` must keep). Its istiods start after ``cacerts`` exists (made by the same
trust core as ``meshfed certs``), in ``<sandbox>/pki/mesh``, the directory every command here
works on. Each step asks every cluster's istiod for a workload certificate over its CA gRPC
API, checks the chain with the trust core and with ``openssl verify`` (an independent
oracle), and checks that a leaf from c1 verifies against the root bundle c2's istiod
publishes (``istio-ca-root-cert``): before the rotation, after ``rotate --phase bundle`` and
an istiod restart, and after ``rotate --phase finish``. The tests run in file order.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from meshfed.sandbox import processes
from meshfed.sandbox.layout import SandboxLayout
from meshfed.sandbox.manager import Sandbox
from meshfed.trust.bundle import fingerprint, verify_chain
from meshfed.trust.issue import CaSpec, IssuedCa, issue_root, key_pem
from meshfed.trust.store import TrustStore
from tests.helpers.federator_harness import get_json, kubectl
from tests.helpers.istio import ISTIO_SANDBOX_BASE_PORT, MESHFED, running_istio_sandbox
from tests.helpers.istio_ca import WorkloadCert, create_certificate, service_account_token

CERTS_BASE_PORT = int(
    os.environ.get("MESHFED_TEST_CERTS_BASE_PORT", str(ISTIO_SANDBOX_BASE_PORT + 100))
)
CLUSTERS = ("c1", "c2")
NAMESPACE, ACCOUNT = "certs-probe", "probe"
SPIFFE = f"spiffe://cluster.local/ns/{NAMESPACE}/sa/{ACCOUNT}"


class Mesh:
    """The running two-cluster sandbox and what the steps carry over."""

    def __init__(self, sandbox: Sandbox, layout: SandboxLayout) -> None:
        self.sandbox = sandbox
        self.layout = layout
        self.store = TrustStore(sandbox.directory / "pki" / "mesh")
        self.config = sandbox.directory / "federation.yaml"
        self.kubeconfig = sandbox.kubeconfig
        self.before_rotation: dict[str, WorkloadCert] = {}

    def certs(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            [MESHFED, "certs", *args], capture_output=True, text=True, timeout=180, check=False
        )
        assert "PRIVATE KEY" not in out.stdout + out.stderr, "key material printed"
        if ok:
            assert out.returncode == 0, out.stdout + out.stderr
        return out

    def published(self, context: str) -> tuple[x509.Certificate, ...]:
        cm = get_json(self.kubeconfig, context, "configmap", "istio-ca-root-cert",
                      "-n", "default")  # fmt: skip
        return tuple(x509.load_pem_x509_certificates(cm["data"]["root-cert.pem"].encode()))

    def wait_published(self, context: str, roots: list[x509.Certificate]) -> None:
        want = {fingerprint(r) for r in roots}
        deadline, seen = time.monotonic() + 60, set[str]()
        while time.monotonic() < deadline:
            seen = {fingerprint(r) for r in self.published(context)}
            if seen == want:
                return
            time.sleep(0.5)
        raise AssertionError(f"{context}'s istio-ca-root-cert holds {seen}, expected {want}")

    def workload_cert(self, context: str) -> WorkloadCert:
        token = service_account_token(self.kubeconfig, context, NAMESPACE, ACCOUNT)
        cluster = next(c for c in self.layout.clusters if c.name == context)
        return create_certificate(
            address=f"127.0.0.1:{cluster.istiod.secure_grpc}",
            server_root=self.sandbox.directory / context / "istiod" / "cacerts" / "root-cert.pem",
            token=token,
            cluster=context,
            spiffe_id=SPIFFE,
        )

    def update_mounted_cacerts(self, context: str) -> None:
        """Copy the cluster's ``cacerts`` Secret into the running istiod's directory."""
        secret = get_json(self.kubeconfig, context, "secret", "cacerts", "-n", "istio-system")
        for name, value in secret["data"].items():
            (self.sandbox.directory / context / "istiod" / "cacerts" / name).write_bytes(
                base64.b64decode(value)
            )

    def wait_log(self, context: str, text: str, timeout: float = 30.0) -> None:
        log = self.sandbox.directory / "logs" / f"{context}-istiod.log"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in log.read_text(errors="replace"):
                return
            time.sleep(0.3)
        raise AssertionError(f"{context}'s istiod did not log {text!r} within {timeout:g}s")

    def restart_istiods(self) -> None:
        """A rolling restart: stop one istiod and let ``sandbox up`` start it again (it
        re-mounts the current ``cacerts`` Secret into istiod's directory first, as a new Pod
        would get it). One at a time: ``up`` starting two istiods at once races on writing
        ``state.json``."""
        for name in CLUSTERS:
            state = processes.load_state(self.sandbox.directory)
            assert state is not None
            processes.stop(state.processes[f"{name}/istiod"], timeout=20)
            self.layout = self.sandbox.up(clusters=len(CLUSTERS), istio=True)


def pem(certs: list[x509.Certificate] | tuple[x509.Certificate, ...]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def openssl_verify(tmp: Path, cert: WorkloadCert, roots: tuple[x509.Certificate, ...]) -> str:
    """``openssl verify -x509_strict`` of the leaf with istiod's chain against ``roots``."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "leaf.pem").write_bytes(pem([cert.leaf]))
    (tmp / "chain.pem").write_bytes(pem(cert.chain))
    (tmp / "roots.pem").write_bytes(pem(roots))
    out = subprocess.run(
        ["openssl", "verify", "-x509_strict", "-CAfile", str(tmp / "roots.pem"),
         "-untrusted", str(tmp / "chain.pem"), str(tmp / "leaf.pem")],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    return (out.stdout + out.stderr).strip()


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    with running_istio_sandbox(
        tmp_path_factory.mktemp("certs-sandbox"),
        clusters=len(CLUSTERS),
        base_port=CERTS_BASE_PORT,
        why="The certificate tests need istiod.",
    ) as (sb, layout):
        yield Mesh(sb, layout)


def _check_mesh(mesh: Mesh, tmp: Path, root: x509.Certificate) -> dict[str, WorkloadCert]:
    """Every istiod signs under ``root``, and c1's leaf verifies against c2's bundle."""
    now = dt.datetime.now(dt.UTC)
    leaves = {}
    for context in CLUSTERS:
        cert = mesh.workload_cert(context)
        assert cert.spiffe_id == SPIFFE
        path = verify_chain(cert.leaf, cert.chain, cert.roots, now=now, field=context)
        assert fingerprint(path[-1]) == fingerprint(root), f"{context} signs under another root"
        assert openssl_verify(tmp / context, cert, (root,)).endswith("OK")
        leaves[context] = cert
    c2_bundle = mesh.published("c2")
    verify_chain(leaves["c1"].leaf, leaves["c1"].chain, c2_bundle, now=now, field="c1 leaf")
    assert openssl_verify(tmp / "c1-in-c2", leaves["c1"], c2_bundle).endswith("OK")
    return leaves


def test_istiod_started_after_cacerts_signs_under_the_shared_root(
    mesh: Mesh, tmp_path: Path
) -> None:
    root = mesh.store.root().cert
    for context in CLUSTERS:
        mesh.wait_published(context, [root])
    mesh.before_rotation = _check_mesh(mesh, tmp_path, root)
    out = mesh.certs("status", "--config", str(mesh.config), "--prometheus", "-")
    assert "every cluster chains to the same root" in out.stderr
    assert "meshfed_certs_same_root 1.0" in out.stdout
    for context in CLUSTERS:
        assert f'meshfed_certs_chains_to_root{{cluster="{context}"}} 1.0' in out.stdout


def _secret_versions(mesh: Mesh) -> dict[str, str]:
    return {
        c: get_json(mesh.kubeconfig, c, "secret", "cacerts", "-n", "istio-system")["metadata"][
            "resourceVersion"
        ]
        for c in CLUSTERS
    }


def _not_a_ca(now: dt.datetime) -> IssuedCa:
    leafy = issue_root(CaSpec(), now=now)
    name = leafy.cert.subject
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(leafy.key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=9))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(leafy.key, hashes.SHA256())
    )  # fmt: skip
    return IssuedCa(cert=cert, key=leafy.key)


@pytest.mark.parametrize(
    ("case", "field"),
    [
        pytest.param("expired-root", "root-cert.pem: ", id="expired-root"),
        pytest.param("not-a-ca-root", "root-cert.pem: ", id="not-a-ca-root"),
        pytest.param("trust-domain", "clusters[c2].trustDomain: ", id="mismatched-trust-domain"),
    ],
)
def test_bad_input_is_refused_before_anything_is_written(
    mesh: Mesh, tmp_path: Path, case: str, field: str
) -> None:
    now = dt.datetime.now(dt.UTC)
    directory = mesh.store.directory
    if case != "trust-domain":
        directory = tmp_path / "certs"
        root = (
            issue_root(CaSpec(validity_days=1), now=now - dt.timedelta(days=3))
            if case == "expired-root"
            else _not_a_ca(now)
        )
        store = TrustStore(directory)
        store.write_root(root)
        assert key_pem(root.key)  # the files hold a key; the output must not
    else:
        kubectl(mesh.kubeconfig, "c2", "-n", "istio-system", "create", "configmap", "istio",
                "--from-literal=mesh=trustDomain: example.org")  # fmt: skip
    before = _secret_versions(mesh)
    files_before = sorted(p for p in directory.rglob("*") if p.is_file())
    try:
        out = mesh.certs("apply", "--dir", str(directory), "--config", str(mesh.config), ok=False)
    finally:
        if case == "trust-domain":
            kubectl(mesh.kubeconfig, "c2", "-n", "istio-system", "delete", "configmap", "istio")
    assert out.returncode == 2, out.stdout + out.stderr
    assert field in " ".join((out.stdout + out.stderr).split()), out.stderr
    assert _secret_versions(mesh) == before, "a Secret was written"
    assert sorted(p for p in directory.rglob("*") if p.is_file()) == files_before


def test_rotation_bundle_phase_keeps_old_and_new_leaves_trusted(mesh: Mesh, tmp_path: Path) -> None:
    old_root = mesh.store.root().cert
    mesh.certs("rotate", "--phase", "bundle", "--dir", str(mesh.store.directory),
               "--config", str(mesh.config))  # fmt: skip
    new_root = mesh.store.next_root()
    assert new_root is not None
    # what a kubelet does when the Secret changes: the running istiod sees the new files but,
    # without ISTIO_MULTIROOT_MESH, keeps its CA when root-cert.pem changed (docs/security.md)
    mesh.update_mounted_cacerts("c1")
    mesh.wait_log("c1", "Multi root is disabled, updating new ROOT-CA not supported")
    kept = mesh.workload_cert("c1")
    assert [fingerprint(r) for r in kept.roots] == [fingerprint(old_root)]
    kept.leaf.verify_directly_issued_by(mesh.before_rotation["c1"].chain[0])  # the old CA
    mesh.restart_istiods()
    for context in CLUSTERS:
        mesh.wait_published(context, [old_root, new_root.cert])
    _check_mesh(mesh, tmp_path, new_root.cert)
    now = dt.datetime.now(dt.UTC)
    old_leaf = mesh.before_rotation["c1"]
    verify_chain(old_leaf.leaf, old_leaf.chain, mesh.published("c2"), now=now, field="old leaf")
    out = mesh.certs("status", "--config", str(mesh.config))
    assert "every cluster chains to the same root" in out.stderr


def test_rotation_finish_phase_drops_the_old_root(mesh: Mesh, tmp_path: Path) -> None:
    new_root = mesh.store.next_root()
    assert new_root is not None
    mesh.certs("rotate", "--phase", "finish", "--dir", str(mesh.store.directory),
               "--config", str(mesh.config))  # fmt: skip
    assert fingerprint(mesh.store.root().cert) == fingerprint(new_root.cert)
    assert mesh.store.next_root() is None
    mesh.restart_istiods()
    for context in CLUSTERS:
        mesh.wait_published(context, [new_root.cert])
    _check_mesh(mesh, tmp_path, new_root.cert)
    old_leaf = mesh.before_rotation["c1"]
    assert not openssl_verify(tmp_path / "old", old_leaf, mesh.published("c2")).endswith("OK")

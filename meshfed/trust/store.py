"""The certificates on disk: a directory users may keep in a vault instead of a cluster.

Layout (keys are 0600, directories 0700; every file is written to a temporary name and
renamed, so a crash never leaves half a key)::

    <dir>/root/root-cert.pem, root-key.pem        the mesh's root CA
    <dir>/root-next/root-cert.pem, root-key.pem   the new root during a rotation
    <dir>/clusters/<name>/ca-cert.pem, ca-key.pem, cert-chain.pem, root-cert.pem
                                                   each cluster's cacerts, as Istio names them
    <dir>/retired/<fingerprint>/root-cert.pem      roots a finished rotation removed (no key)

Nothing here prints or logs file contents.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from meshfed.trust.bundle import CA_KEY, FILES, PluginCa, fingerprint
from meshfed.trust.errors import CertsError
from meshfed.trust.issue import IssuedCa, cert_pem, load_cert, load_key

ROOT_CERT_FILE = "root-cert.pem"
ROOT_KEY_FILE = "root-key.pem"
PRIVATE = {CA_KEY, ROOT_KEY_FILE}


def write_file(path: Path, data: bytes, *, private: bool = False) -> None:
    """Write atomically; ``private`` files are created 0600 (never world-readable, even
    briefly)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    tmp.replace(path)


class TrustStore:
    """The files of one mesh's CAs under ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @property
    def root_dir(self) -> Path:
        return self.directory / "root"

    @property
    def next_dir(self) -> Path:
        return self.directory / "root-next"

    def cluster_dir(self, name: str) -> Path:
        return self.directory / "clusters" / name

    # ---- roots ------------------------------------------------------------------------
    def _read_ca(self, directory: Path) -> IssuedCa | None:
        cert, key = directory / ROOT_CERT_FILE, directory / ROOT_KEY_FILE
        if not (cert.exists() and key.exists()):
            return None
        where = directory.relative_to(self.directory)
        return IssuedCa(
            cert=load_cert(cert.read_bytes(), field=f"{where}/{ROOT_CERT_FILE}"),
            key=load_key(key.read_bytes(), field=f"{where}/{ROOT_KEY_FILE}"),
        )

    def _write_ca(self, directory: Path, ca: IssuedCa) -> None:
        write_file(directory / ROOT_KEY_FILE, ca.key_pem, private=True)
        write_file(directory / ROOT_CERT_FILE, ca.cert_pem)

    def has_root(self) -> bool:
        return (self.root_dir / ROOT_CERT_FILE).exists()

    def root(self) -> IssuedCa:
        """The mesh's root; :class:`CertsError` if there is none yet."""
        ca = self._read_ca(self.root_dir)
        if ca is None:
            raise CertsError(
                "--dir", f"no root CA in {self.directory}: run `meshfed certs init` first"
            )
        return ca

    def write_root(self, ca: IssuedCa) -> None:
        """Write the root (refused if one exists: a new root is a rotation)."""
        if self.has_root():
            raise CertsError(
                "--dir",
                f"{self.directory} already has a root CA; replace it with `meshfed certs rotate`",
            )
        self._write_ca(self.root_dir, ca)

    def next_root(self) -> IssuedCa | None:
        return self._read_ca(self.next_dir)

    def write_next_root(self, ca: IssuedCa) -> None:
        self._write_ca(self.next_dir, ca)

    def promote_next_root(self) -> None:
        """End of a rotation: the old root's certificate goes to ``retired/`` (its key is
        deleted), the new root becomes the root."""
        old = self.root()
        retired = self.directory / "retired" / fingerprint(old.cert)[:16]
        write_file(retired / ROOT_CERT_FILE, cert_pem(old.cert))
        shutil.rmtree(self.root_dir)
        self.next_dir.replace(self.root_dir)

    # ---- clusters ---------------------------------------------------------------------
    def cluster_names(self) -> list[str]:
        base = self.directory / "clusters"
        return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []

    def read_cluster(self, name: str) -> PluginCa | None:
        """The cluster's ``cacerts`` files (None if it has none)."""
        return read_plugin_files(self.cluster_dir(name), where=f"clusters[{name}].")

    def write_cluster(self, name: str, ca: PluginCa) -> None:
        write_plugin_files(self.cluster_dir(name), ca)


def read_plugin_files(directory: Path, *, where: str = "") -> PluginCa | None:
    """The ``cacerts`` files in ``directory`` (None if the directory does not exist)."""
    if not directory.is_dir():
        return None
    files = {f: (directory / f).read_bytes() for f in FILES if (directory / f).exists()}
    return PluginCa.from_files(files, where=where)


def write_plugin_files(directory: Path, ca: PluginCa) -> None:
    """Write the four ``cacerts`` files into ``directory`` (the key 0600)."""
    for file, data in ca.files().items():
        write_file(directory / file, data, private=file in PRIVATE)

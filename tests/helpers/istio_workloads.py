"""Mesh workloads without a proxy: a TLS backend and a TLS client with SPIFFE certificates.

They speak to Envoy as sidecars do (mutual TLS, ALPN ``istio``, certificates chaining to the
mesh root) with certificates signed here by the clusters' plug-in intermediates, the keys
istiod signs with; they stand in for the two ends of a call so the proxies between them are
the only thing under test.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import ssl
import subprocess
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.helpers.istio import IstioSandbox

REPLY = b"reviews from the backend\n"


def host_ip() -> str:
    """This machine's first global IPv4 address: an EndpointSlice may not hold loopback
    addresses, so a backend that the sandbox routes to must listen on a real interface."""
    out = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "scope", "global"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    for line in out.stdout.splitlines():
        return line.split()[3].split("/")[0]
    raise RuntimeError("no global IPv4 address on this machine: the data-plane test needs one")


def workload_cert(
    sb: IstioSandbox, context: str, account: str, directory: Path
) -> tuple[Path, Path]:
    """A SPIFFE workload certificate (chain, key) for ``default/<account>`` in ``context``."""
    ca_dir = sb.directory / context / "pki" / "istio"
    ca = x509.load_pem_x509_certificate((ca_dir / "ca-cert.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((ca_dir / "ca-key.pem").read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    spiffe = f"spiffe://cluster.local/ns/default/sa/{account}"
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(spiffe)]), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    chain, key_file = directory / f"{account}.crt", directory / f"{account}.key"
    chain.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM) + (ca_dir / "ca-cert.pem").read_bytes()
    )
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return chain, key_file


class MtlsBackend:
    """A TLS listener that demands a mesh client certificate and ALPN ``istio``, answers one
    line per connection (as an HTTP response when asked in HTTP), and records who connected."""

    def __init__(self, *, address: str, cert: tuple[Path, Path], root: Path) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(*cert)
        self.context.load_verify_locations(root)
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.context.set_alpn_protocols(["istio"])
        self.sock = socket.create_server((address, 0))
        self.port = int(self.sock.getsockname()[1])
        self.peers: list[tuple[str, str | None]] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with (
                contextlib.suppress(OSError, ssl.SSLError),
                self.context.wrap_socket(conn, server_side=True) as tls,
            ):
                peer = str(dict(tls.getpeercert()["subjectAltName"]).get("URI"))  # type: ignore[arg-type,index]
                self.peers.append((peer, tls.selected_alpn_protocol()))
                request = tls.recv(4096)
                if request.split(b" ", 1)[0] in (b"GET", b"POST", b"HEAD"):  # HTTP: from a sidecar
                    head = (
                        f"HTTP/1.1 200 OK\r\ncontent-length: {len(REPLY)}\r\nx-peer: {peer}\r\n\r\n"
                    )
                    tls.sendall(head.encode() + REPLY)
                else:
                    tls.sendall(REPLY)

    def close(self) -> None:
        self.sock.close()


def mtls_call(
    *, address: tuple[str, int], sni: str, cert: tuple[Path, Path], root: Path
) -> tuple[str, bytes]:
    """One mTLS exchange as a sidecar makes it: SNI, ALPN ``istio``, mesh certificate. Returns
    the server's SPIFFE identity and its reply."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_cert_chain(*cert)
    ctx.load_verify_locations(root)
    ctx.check_hostname = False  # Istio checks the SPIFFE URI, not a DNS name; so does the caller
    ctx.set_alpn_protocols(["istio"])
    with (
        socket.create_connection(address, timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname=sni) as tls,
    ):
        san = dict(tls.getpeercert()["subjectAltName"])  # type: ignore[arg-type,index]
        tls.sendall(b"hello from a mesh client\n")
        return str(san.get("URI")), tls.recv(100)

"""The ``ssl.SSLContext`` of a client from its credentials (CA, client certificate and key).

Apart from ``federator.kube.client`` because loading a client key needs a file: it is written
0600 into a private temporary directory, loaded and removed at once.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from pathlib import Path


def ssl_context(
    *, ca_pem: bytes | None, cert_pem: bytes | None, key_pem: bytes | None
) -> ssl.SSLContext:
    """Verify the server with ``ca_pem`` (the system CAs if None); present the client
    certificate if both ``cert_pem`` and ``key_pem`` are given."""
    # One context, never a discarded default one: loading the system CAs costs ~0.7 MiB
    # of heap per context (measured), freed again but scattered through the heap.
    ctx = (
        ssl.create_default_context(cadata=ca_pem.decode())
        if ca_pem
        else ssl.create_default_context()
    )
    if cert_pem and key_pem:
        # ssl can only load a client key from a file: write it 0600, load, remove at once.
        with tempfile.TemporaryDirectory(prefix="meshfed-") as tmp:
            cert, key = str(Path(tmp) / "c.pem"), str(Path(tmp) / "k.pem")
            for path, data in ((cert, cert_pem), (key, key_pem)):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
            ctx.load_cert_chain(cert, key)
    return ctx

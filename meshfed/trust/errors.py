"""The one error of ``meshfed certs``: input refused before anything is written.

Every refusal names the field (a CLI option, a file of the ``cacerts`` Secret, a cluster's
mesh config key) so the message alone says what to fix. It is permanent: retrying the same
input gives the same answer.
"""

from __future__ import annotations


class CertsError(Exception):
    """Invalid certificate input; ``field`` names what is wrong (``root-cert.pem``,
    ``--trust-domain``, ``clusters[c2].trustDomain``, ...)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.reason = message
        super().__init__(f"{field}: {message}")

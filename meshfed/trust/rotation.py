"""Root rotation with an overlap window: the ``cacerts`` each phase writes, computed purely.

Istio trusts whatever ``root-cert.pem`` holds, and verifies a chain against any root of it,
so a root is replaced in phases that never leave two workloads without a common root:

``trust``  (optional, for meshes whose clusters cannot all be updated at once)
    every bundle becomes old + new root; the old intermediates keep signing.
``bundle``
    every bundle is old + new root; each cluster gets a new intermediate issued by the new
    root, whose ``cert-chain.pem`` ends at the new root. Workloads signed before (old root)
    and after (new root) both verify everywhere.
``finish``
    once every workload certificate has been re-issued (istiod's default workload lifetime
    is 24 h), the old root is removed: bundles hold the new root only.

Each function takes the clusters' current ``cacerts`` and returns the next ones; a phase
that is already done is a no-op, so a rerun after a partial failure converges.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping

from cryptography import x509

from meshfed.trust.bundle import CA_CERT, PluginCa, fingerprint, issued_by, unique
from meshfed.trust.errors import CertsError
from meshfed.trust.issue import CaSpec, IssuedCa, check_ca, issue_intermediate, trust_domain_of


class Phase(enum.Enum):
    """A step of a root rotation (module docstring)."""

    TRUST = "trust"
    BUNDLE = "bundle"
    FINISH = "finish"


def check_new_root(new_root: IssuedCa, *, old_root: x509.Certificate, now: dt.datetime) -> None:
    """The new root must be a usable CA of the same trust domain, and not the old root."""
    check_ca(
        new_root, now=now, cert_field="root-next/root-cert.pem", key_field="root-next/root-key.pem"
    )
    if fingerprint(new_root.cert) == fingerprint(old_root):
        raise CertsError("root-next/root-cert.pem", "is the current root; nothing to rotate")
    old, new = trust_domain_of(old_root), trust_domain_of(new_root.cert)
    if old != new:
        raise CertsError(
            "--trust-domain", f"the new root is for {new!r} but the mesh's trust domain is {old!r}"
        )


def trust_phase(
    current: Mapping[str, PluginCa], *, new_root: x509.Certificate
) -> dict[str, PluginCa]:
    """Add the new root to every bundle; intermediates unchanged."""
    return {
        name: PluginCa(ca=ca.ca, chain=ca.chain, roots=unique((*ca.roots, new_root)))
        for name, ca in current.items()
    }


def bundle_phase(
    current: Mapping[str, PluginCa],
    *,
    new_root: IssuedCa,
    spec: CaSpec,
    now: dt.datetime,
) -> dict[str, PluginCa]:
    """Old + new root in every bundle, intermediates re-issued by the new root (kept if a
    previous run already did)."""
    out: dict[str, PluginCa] = {}
    for name, ca in current.items():
        intermediate = ca.ca
        if not issued_by(ca.ca.cert, new_root.cert):
            intermediate = issue_intermediate(root=new_root, cluster=name, spec=spec, now=now)
        out[name] = PluginCa(
            ca=intermediate,
            chain=(intermediate.cert, new_root.cert),
            roots=unique((*ca.roots, new_root.cert)),
        )
    return out


def finish_phase(
    current: Mapping[str, PluginCa], *, new_root: x509.Certificate
) -> dict[str, PluginCa]:
    """Bundles hold the new root only; refused while any intermediate is still the old
    root's (its workloads would lose their trust anchor)."""
    for name, ca in current.items():
        if not issued_by(ca.ca.cert, new_root):
            raise CertsError(
                f"clusters[{name}].{CA_CERT}",
                "is still issued by the old root: run `meshfed certs rotate --phase bundle` first",
            )
    return {
        name: PluginCa(ca=ca.ca, chain=ca.chain, roots=(new_root,)) for name, ca in current.items()
    }


def plan(
    phase: Phase,
    current: Mapping[str, PluginCa],
    *,
    old_root: x509.Certificate,
    new_root: IssuedCa,
    spec: CaSpec,
    now: dt.datetime,
) -> dict[str, PluginCa]:
    """The ``cacerts`` of every cluster after ``phase``."""
    check_new_root(new_root, old_root=old_root, now=now)
    if phase is Phase.TRUST:
        return trust_phase(current, new_root=new_root.cert)
    if phase is Phase.BUNDLE:
        return bundle_phase(current, new_root=new_root, spec=spec, now=now)
    return finish_phase(current, new_root=new_root.cert)

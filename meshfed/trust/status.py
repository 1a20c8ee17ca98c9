"""``meshfed certs status``: per cluster, who issued its CA, when it expires, whether it
chains to a root it trusts, and whether every cluster chains to the same root.

Pure: rows from parsed ``cacerts``, and their Prometheus text exposition. The expiry metric
is exported as text (``--prometheus``, for node_exporter's textfile collector or a push)
rather than by the federator: reading ``cacerts`` needs ``get`` on Secrets in
``istio-system``, which the federator's member RBAC deliberately does not grant
(docs/security.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, replace

from prometheus_client import CollectorRegistry, Gauge, generate_latest

from meshfed.trust.bundle import PluginCa, check_plugin_ca, common_name, fingerprint
from meshfed.trust.errors import CertsError

SECONDS_PER_DAY = 86400.0


@dataclass(frozen=True, slots=True)
class ClusterCertStatus:
    """One row of the status table."""

    cluster: str
    issuer: str = ""
    """Common name of the issuer of the cluster's intermediate CA."""
    subject: str = ""
    not_after: dt.datetime | None = None
    """When the intermediate CA expires."""
    days_left: float = 0.0
    root: str = ""
    """Common name of the root the intermediate chains to (empty if none)."""
    root_fingerprint: str = ""
    root_not_after: dt.datetime | None = None
    bundle: tuple[str, ...] = ()
    """Common names of every root in ``root-cert.pem``."""
    problem: str = ""
    """Why the cluster does not chain to a trusted root (empty if it does)."""

    @property
    def chains(self) -> bool:
        return not self.problem and bool(self.root_fingerprint)


def cluster_status(cluster: str, ca: PluginCa | None, *, now: dt.datetime) -> ClusterCertStatus:
    """The row of ``cluster`` (``ca`` None: it has no ``cacerts``)."""
    if ca is None:
        return ClusterCertStatus(cluster=cluster, problem="no cacerts")
    cert = ca.ca.cert
    base = ClusterCertStatus(
        cluster=cluster,
        issuer=cert.issuer.rfc4514_string(),
        subject=common_name(cert),
        not_after=cert.not_valid_after_utc,
        days_left=(cert.not_valid_after_utc - now).total_seconds() / SECONDS_PER_DAY,
        bundle=tuple(common_name(r) for r in ca.roots),
    )
    try:
        root = check_plugin_ca(ca, now=now)
    except CertsError as err:
        return replace(base, problem=str(err))
    return replace(
        base,
        issuer=common_name(ca.chain[1]) if len(ca.chain) > 1 else base.issuer,
        root=common_name(root),
        root_fingerprint=fingerprint(root),
        root_not_after=root.not_valid_after_utc,
    )


def same_root(rows: Sequence[ClusterCertStatus]) -> bool:
    """Every cluster chains, and all to one root."""
    return (
        bool(rows) and all(r.chains for r in rows) and len({r.root_fingerprint for r in rows}) == 1
    )


def prometheus_text(rows: Sequence[ClusterCertStatus]) -> bytes:
    """The status as Prometheus text exposition (node_exporter textfile format)."""
    registry = CollectorRegistry()
    expiry = Gauge(
        "meshfed_certs_not_after_timestamp_seconds",
        "When a cluster's plug-in CA certificate expires (unix seconds).",
        ["cluster", "cert"],
        registry=registry,
    )
    chains = Gauge(
        "meshfed_certs_chains_to_root",
        "1 if the cluster's intermediate CA chains to a root of its own trust bundle.",
        ["cluster"],
        registry=registry,
    )
    same = Gauge(
        "meshfed_certs_same_root",
        "1 if every cluster's intermediate CA chains to the same root.",
        registry=registry,
    )
    for row in rows:
        chains.labels(cluster=row.cluster).set(1 if row.chains else 0)
        if row.not_after is not None:
            expiry.labels(cluster=row.cluster, cert="intermediate").set(row.not_after.timestamp())
        if row.root_not_after is not None:
            expiry.labels(cluster=row.cluster, cert="root").set(row.root_not_after.timestamp())
    same.set(1 if same_root(rows) else 0)
    return generate_latest(registry)

"""Status rows and the expiry metric's text exposition."""

from __future__ import annotations

import dataclasses
import datetime as dt

from prometheus_client.parser import text_string_to_metric_families

from meshfed.trust.bundle import PluginCa
from meshfed.trust.issue import CaSpec, IssuedCa, issue_root
from meshfed.trust.status import cluster_status, prometheus_text, same_root
from tests.unit.meshfed.trust.conftest import NOW, cluster_ca


def _samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }


def test_one_shared_root_is_reported_with_expiry(root: IssuedCa, mesh: dict[str, PluginCa]) -> None:
    rows = [cluster_status(n, ca, now=NOW) for n, ca in sorted(mesh.items())]
    assert same_root(rows)
    c1 = rows[0]
    assert c1.chains and c1.issuer == c1.root and c1.root.startswith("meshfed root CA")
    assert round(c1.days_left) == 365
    samples = _samples(prometheus_text(rows))
    assert samples[("meshfed_certs_same_root", ())] == 1
    assert samples[("meshfed_certs_chains_to_root", (("cluster", "c2"),))] == 1
    key = (
        "meshfed_certs_not_after_timestamp_seconds",
        (("cert", "intermediate"), ("cluster", "c1")),
    )
    assert samples[key] == (NOW + dt.timedelta(days=365)).timestamp()
    root_key = ("meshfed_certs_not_after_timestamp_seconds", (("cert", "root"), ("cluster", "c1")))
    assert samples[root_key] == root.cert.not_valid_after_utc.timestamp()


def test_a_cluster_under_another_root_breaks_same_root(mesh: dict[str, PluginCa]) -> None:
    other = cluster_ca(issue_root(CaSpec(), now=NOW), "c3")
    rows = [cluster_status("c1", mesh["c1"], now=NOW), cluster_status("c3", other, now=NOW)]
    assert all(r.chains for r in rows)
    assert not same_root(rows)
    assert _samples(prometheus_text(rows))[("meshfed_certs_same_root", ())] == 0


def test_missing_and_broken_clusters_do_not_chain(mesh: dict[str, PluginCa]) -> None:
    broken = dataclasses.replace(mesh["c1"], roots=mesh["c2"].roots[:0] or (mesh["c2"].ca.cert,))
    rows = [cluster_status("c1", broken, now=NOW), cluster_status("c2", None, now=NOW)]
    assert [r.chains for r in rows] == [False, False]
    assert "root-cert.pem" in rows[0].problem and rows[1].problem == "no cacerts"
    assert not same_root(rows)
    assert (
        _samples(prometheus_text(rows))[("meshfed_certs_chains_to_root", (("cluster", "c2"),))] == 0
    )

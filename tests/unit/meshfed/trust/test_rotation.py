"""Root rotation, phase by phase: the bundles overlap so no workload loses its trust anchor."""

from __future__ import annotations

import dataclasses

import pytest

from meshfed.trust.bundle import PluginCa, check_plugin_ca, issued_by, verify_chain
from meshfed.trust.errors import CertsError
from meshfed.trust.issue import CaSpec, IssuedCa, issue_root
from meshfed.trust.rotation import Phase, plan
from tests.unit.meshfed.trust.conftest import NOW, leaf_of

SPEC = CaSpec(validity_days=365)


@pytest.fixture(scope="module")
def new_root() -> IssuedCa:
    return issue_root(CaSpec(), now=NOW)


def _plan(
    phase: Phase, current: dict[str, PluginCa], root: IssuedCa, new: IssuedCa
) -> dict[str, PluginCa]:
    return plan(phase, current, old_root=root.cert, new_root=new, spec=SPEC, now=NOW)


def test_trust_phase_adds_the_new_root_and_keeps_the_intermediates(
    root: IssuedCa, new_root: IssuedCa, mesh: dict[str, PluginCa]
) -> None:
    after = _plan(Phase.TRUST, mesh, root, new_root)
    for name, ca in after.items():
        assert ca.roots == (root.cert, new_root.cert)
        assert ca.ca.cert == mesh[name].ca.cert
        check_plugin_ca(ca, now=NOW)


def test_bundle_phase_reissues_under_the_new_root_and_trusts_both(
    root: IssuedCa, new_root: IssuedCa, mesh: dict[str, PluginCa]
) -> None:
    after = _plan(Phase.BUNDLE, mesh, root, new_root)
    old_leaf = leaf_of(mesh["c1"].ca)
    for name, ca in after.items():
        assert ca.roots == (root.cert, new_root.cert)
        assert issued_by(ca.ca.cert, new_root.cert)
        assert ca.chain == (ca.ca.cert, new_root.cert)
        assert check_plugin_ca(ca, now=NOW, where=f"{name}.") == new_root.cert
        # leaves of before and after the switch verify in every cluster
        new_leaf = leaf_of(ca.ca)
        for other in after.values():
            verify_chain(new_leaf, [ca.ca.cert], other.roots, now=NOW, field="new leaf")
            verify_chain(old_leaf, [mesh["c1"].ca.cert], other.roots, now=NOW, field="old leaf")
    again = _plan(Phase.BUNDLE, after, root, new_root)
    assert {n: c.ca.cert for n, c in again.items()} == {n: c.ca.cert for n, c in after.items()}
    assert all(c.roots == (root.cert, new_root.cert) for c in again.values())


def test_finish_phase_drops_the_old_root(
    root: IssuedCa, new_root: IssuedCa, mesh: dict[str, PluginCa]
) -> None:
    bundled = _plan(Phase.BUNDLE, mesh, root, new_root)
    after = _plan(Phase.FINISH, bundled, root, new_root)
    for name, ca in after.items():
        assert ca.roots == (new_root.cert,)
        assert ca.ca.cert == bundled[name].ca.cert
        check_plugin_ca(ca, now=NOW)
    with pytest.raises(CertsError):
        verify_chain(leaf_of(mesh["c1"].ca), [mesh["c1"].ca.cert], after["c2"].roots,
                     now=NOW, field="old leaf")  # fmt: skip


def test_finish_before_bundle_is_refused_naming_the_cluster(
    root: IssuedCa, new_root: IssuedCa, mesh: dict[str, PluginCa]
) -> None:
    trusted = _plan(Phase.TRUST, mesh, root, new_root)
    with pytest.raises(CertsError, match="--phase bundle") as err:
        _plan(Phase.FINISH, trusted, root, new_root)
    assert err.value.field == "clusters[c1].ca-cert.pem"


@pytest.mark.parametrize(
    ("make_new", "field"),
    [
        pytest.param(lambda r: r, "root-next/root-cert.pem", id="same-root"),
        pytest.param(lambda r: issue_root(CaSpec(trust_domain="other.example"), now=NOW),
                     "--trust-domain", id="other-trust-domain"),
        pytest.param(lambda r: dataclasses.replace(r, key=issue_root(CaSpec(), now=NOW).key),
                     "root-next/root-key.pem", id="foreign-key"),
    ],
)  # fmt: skip
def test_a_bad_new_root_is_refused(
    root: IssuedCa, mesh: dict[str, PluginCa], make_new: object, field: str
) -> None:
    new = make_new(root)  # type: ignore[operator]
    with pytest.raises(CertsError) as err:
        _plan(Phase.BUNDLE, mesh, root, new)
    assert err.value.field == field

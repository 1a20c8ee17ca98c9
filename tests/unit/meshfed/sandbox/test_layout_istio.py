"""istiod's ports in the sandbox layout: per cluster, distinct, inside the cluster's block."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshfed.sandbox.layout import PORTS_PER_CLUSTER, plan_layout


@pytest.mark.parametrize("clusters", [pytest.param(n, id=f"{n}-clusters") for n in (1, 3, 10)])
def test_istiod_ports_are_distinct_and_inside_each_block(clusters: int) -> None:
    layout = plan_layout(directory=Path("sb"), clusters=clusters, base_port=30000, istio=True)
    ports = layout.ports
    assert len(ports) == len(set(ports)), "a port used twice"
    for c in layout.clusters:
        block = range(c.apiserver_port, c.apiserver_port + PORTS_PER_CLUSTER)
        assert all(p in block for p in (*c.ports, *c.istiod.all))


@pytest.mark.parametrize(
    ("istio", "count"),
    [pytest.param(False, 2 + 4 * 3, id="without-istio"), pytest.param(True, 2 + 10 * 3, id="with")],
)
def test_layout_ports_include_istiod_only_with_istio(istio: bool, count: int) -> None:
    layout = plan_layout(directory=Path("sb"), clusters=3, istio=istio)
    assert len(layout.ports) == count


def test_turning_istio_on_moves_no_kubernetes_port() -> None:
    plain = plan_layout(directory=Path("sb"), clusters=3)
    mesh = plan_layout(directory=Path("sb"), clusters=3, istio=True)
    assert [c.ports for c in plain.clusters] == [c.ports for c in mesh.clusters]


def test_two_sandboxes_on_different_base_ports_share_no_istiod_port() -> None:
    a = plan_layout(directory=Path("a"), clusters=3, base_port=23000, istio=True)
    b = plan_layout(directory=Path("b"), clusters=3, base_port=25000, istio=True)
    assert not set(a.ports) & set(b.ports)

"""The sidecar node istiod sees, and ``meshfed mesh inspect``'s errors (no sockets)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from meshfed.cli import app
from meshfed.mesh.node import SidecarIdentity, metadata, sidecar_node
from meshfed.sandbox import processes


def test_node_id_and_metadata_are_a_sidecars() -> None:
    ident = SidecarIdentity(
        cluster="c3", namespace="shop", region="region-b", zone="region-b-1", network="network-c3"
    )
    node = sidecar_node(ident)
    assert node.id == "sidecar~10.255.255.1~meshfed-inspect.shop~shop.svc.cluster.local"
    meta = dict(node.metadata.fields)
    assert meta["CLUSTER_ID"].string_value == "c3"
    assert meta["NAMESPACE"].string_value == "shop"
    assert meta["NETWORK"].string_value == "network-c3"
    assert meta["LABELS"].struct_value.fields["app"].string_value == "meshfed-inspect"
    assert (node.locality.region, node.locality.zone) == ("region-b", "region-b-1")


def test_no_network_key_without_a_network() -> None:
    assert "NETWORK" not in metadata(SidecarIdentity(cluster="c1"))


@pytest.mark.parametrize(
    ("args", "state", "message"),
    [
        pytest.param([], None, "pass --context", id="no-target"),
        pytest.param(["--context", "c3"], None, "no sandbox in", id="no-sandbox"),
        pytest.param(["--context", "c3"], False, "runs no istiod", id="sandbox-without-istio"),
        pytest.param(["--context", "c9"], True, "no cluster 'c9'", id="unknown-context"),
    ],
)
def test_inspect_says_what_to_do(
    tmp_path: Path, args: list[str], state: bool | None, message: str
) -> None:
    if state is not None:
        processes.save_state(
            tmp_path,
            processes.SandboxState(clusters=3, topology="gateway", base_port=25000, istio=state),
        )
    result = CliRunner().invoke(app, ["mesh", "inspect", "--dir", str(tmp_path), *args])
    assert result.exit_code == 1
    assert message in result.output

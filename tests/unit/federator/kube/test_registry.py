"""The cluster registry: a client per member from kubeconfig files, swapped in place on
rotation, the replaced one closed later, everything closed once (clients are built, never
connected: no sockets)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from federator.core.config import FederationConfig, KubeconfigFile
from federator.core.model import ClusterId
from federator.errors import ConfigError
from federator.kube.client import Credentials, KubeClient
from federator.kube.clusters import ClusterRegistry
from tests.helpers.federator_builders import make_config

C1, C2 = ClusterId("c1"), ClusterId("c2")


def kubeconfig(path: Path, name: str) -> Path:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": f"https://{name}.invalid:6443"}}],
        "users": [{"name": name, "user": {"token": f"token-{name}"}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def config_with_files(tmp_path: Path) -> FederationConfig:
    config = make_config(names=("c1", "c2"))
    clusters = tuple(
        dataclasses.replace(
            c, kubeconfig=KubeconfigFile(path=str(kubeconfig(tmp_path / c.name, c.name)))
        )
        for c in config.clusters
    )
    return dataclasses.replace(config, clusters=clusters)


async def test_open_replace_and_close(tmp_path: Path) -> None:
    registry = ClusterRegistry(config_with_files(tmp_path), retire_after=3600)
    await registry.open()
    clients = registry.clients
    assert set(clients) == {C1, C2} and registry.home is None  # no Secret member: no home
    assert clients[C2].server == "https://c2.invalid:6443"
    assert registry.loaded[C1].source == f"kubeconfig {tmp_path / 'c1'}"
    old = clients[C2]
    new = KubeClient(cluster=C2, credentials=Credentials(server="https://c2-new.invalid"))
    await registry.replace(C2, new)
    assert registry.clients is clients and clients[C2] is new  # the same dict, swapped in place
    assert not old.closed  # requests in flight on it may finish
    await registry.aclose()
    assert old.closed and new.closed and registry.clients == {}
    await registry.aclose()


async def test_open_failure_closes_what_it_opened(tmp_path: Path) -> None:
    config = config_with_files(tmp_path)
    (tmp_path / "c2").unlink()
    registry = ClusterRegistry(config)
    with pytest.raises(ConfigError, match="cannot be read"):
        await registry.open()
    assert registry.clients == {}

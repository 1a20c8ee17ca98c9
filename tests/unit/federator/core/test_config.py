"""Start-up validation of federation.yaml: every bad config fails with the field and the fix."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from federator.core.config import FederationConfig
from federator.core.config_checks import split_host_port
from federator.core.config_parse import load_config
from federator.core.model import Topology
from federator.errors import ConfigError
from tests.helpers.paths import REPO_ROOT


def base_doc() -> dict[str, Any]:
    return {
        "apiVersion": "meshfed.io/v1alpha1",
        "kind": "FederationConfig",
        "topology": "gateway",
        "hostSuffix": "clusterset.local",
        "failover": {"regions": ["region-a", "region-b"]},
        "clusters": [
            {
                "name": "c1",
                "kubeconfig": {"path": "kubeconfig", "context": "c1"},
                "network": "network-c1",
                "region": "region-a",
                "zone": "region-a-1",
                "eastWestGateway": {
                    "namespace": "istio-system",
                    "selector": {"istio": "eastwestgateway"},
                },
            },
            {
                "name": "c2",
                "secret": {"name": "c2-kubeconfig"},
                "network": "network-c2",
                "region": "region-b",
                "zone": "region-b-1",
                "eastWestGateway": {"address": "gw.c2.example.com"},
            },
            {"name": "c3", "kubeconfig": {"path": "/abs/kubeconfig"}, "region": "region-a"},
        ],
    }


def write(tmp_path: Path, doc: Any) -> Path:
    path = tmp_path / "federation.yaml"
    path.write_text(yaml.safe_dump(doc) if not isinstance(doc, str) else doc)
    return path


def test_valid_config_loads_with_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, base_doc()))
    assert config.topology is Topology.GATEWAY
    assert config.cluster_ids == ("c1", "c2", "c3")
    c1, c2, c3 = config.clusters
    assert c1.kubeconfig is not None and c1.kubeconfig.path == str(tmp_path / "kubeconfig")
    assert c1.kubeconfig.context == "c1"
    assert c2.secret is not None and (c2.secret.name, c2.secret.key) == (
        "c2-kubeconfig",
        "kubeconfig",
    )
    assert c2.east_west_gateway.address == "gw.c2.example.com"
    assert c3.kubeconfig is not None and c3.kubeconfig.path == "/abs/kubeconfig"
    assert c3.east_west_gateway.namespace == "istio-system"
    assert dict(c3.east_west_gateway.selector) == {"istio": "eastwestgateway"}
    assert c1.locality == "region-a/region-a-1"
    assert config.failover.regions == ("region-a", "region-b")
    assert config.resync_period_seconds == 300.0
    assert config.namespace == "meshfed-system"


def test_example_in_docs_is_valid(tmp_path: Path) -> None:
    docs = REPO_ROOT / "docs" / "configuration.md"
    text = docs.read_text()
    start = text.index("```yaml\n") + len("```yaml\n")
    example = text[start : text.index("```", start)]
    config = load_config(write(tmp_path, example))
    config.validate()


def test_resync_and_listen_are_parsed(tmp_path: Path) -> None:
    doc = base_doc() | {"resyncPeriod": "5m", "listen": {"http": "127.0.0.1:9000"}}
    config = load_config(write(tmp_path, doc))
    assert config.resync_period_seconds == 300.0
    assert config.listen.http == "127.0.0.1:9000"
    assert config.listen.grpc == "127.0.0.1:50051"


def mutate(path: str, value: Any) -> dict[str, Any]:
    """base_doc() with the dotted ``path`` set to ``value`` (``...=DELETE`` removes it)."""
    doc = base_doc()
    node: Any = doc
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node[part]
    last = parts[-1]
    if value == "DELETE":
        del node[int(last) if last.isdigit() else last]
    elif last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return doc


BAD = [
    pytest.param(
        mutate("clusters.2.name", "c1"),
        'clusters[2].name "c1" is a duplicate of clusters[0].name: cluster names must be unique',
        id="duplicate-cluster-name",
    ),
    pytest.param(
        mutate("failover.regions", ["region-a", "eu-west"]),
        'failover.regions[1] "eu-west" is not the region of any cluster; '
        "known regions: region-a, region-b",
        id="unknown-failover-region",
    ),
    pytest.param(
        mutate("failover.regions", ["region-a", "region-a"]),
        'failover.regions[1] "region-a" is listed twice',
        id="duplicate-failover-region",
    ),
    pytest.param(
        mutate("clusters.2.region", "DELETE"),
        "clusters[2].region is empty but failover.regions is set",
        id="failover-needs-regions",
    ),
    pytest.param(
        mutate("clusters.0.regoin", "x"),
        "clusters[0].regoin is not a known field",
        id="misspelt-field",
    ),
    pytest.param(
        mutate("topology", "mesh"),
        'topology "mesh" is not a topology: use "gateway" or "vpn"',
        id="bad-topology",
    ),
    pytest.param(
        mutate("clusters.0.secret", {"name": "c1"}),
        'clusters[0] ("c1") must set exactly one of kubeconfig',
        id="kubeconfig-and-secret",
    ),
    pytest.param(
        mutate("clusters.0.kubeconfig", "DELETE"),
        'clusters[0] ("c1") must set exactly one of kubeconfig',
        id="neither-kubeconfig-nor-secret",
    ),
    pytest.param(
        mutate("clusters.0.name", "Cluster_1"),
        'clusters[0].name "Cluster_1" is not a valid cluster name',
        id="invalid-cluster-name",
    ),
    pytest.param(mutate("clusters", []), "clusters is empty", id="no-clusters"),
    pytest.param(
        mutate("hostSuffix", "cluster.local"),
        'hostSuffix "cluster.local" collides with the clusters\' own Service hosts',
        id="host-suffix-cluster-local",
    ),
    pytest.param(
        mutate("hostSuffix", "Not A Domain"),
        'hostSuffix "Not A Domain" is not a valid DNS suffix',
        id="host-suffix-invalid",
    ),
    pytest.param(
        mutate("clusters.1.eastWestGateway", {"address": "https://gw:15443"}),
        'clusters[1].eastWestGateway.address "https://gw:15443" is neither an IP address',
        id="gateway-address-with-scheme",
    ),
    pytest.param(
        mutate("clusters.1.eastWestGateway", {"selector": {}}),
        "clusters[1].eastWestGateway.selector is empty",
        id="empty-gateway-selector",
    ),
    pytest.param(
        mutate("resyncPeriod", "1s"), "resyncPeriod 1s is out of range", id="resync-too-short"
    ),
    pytest.param(
        mutate("resyncPeriod", "soon"), 'resyncPeriod "soon" is not a duration', id="resync-garbage"
    ),
    pytest.param(
        mutate("listen", {"http": "0.0.0.0"}),
        'listen.http "0.0.0.0" is not a listen address',
        id="listen-without-port",
    ),
    pytest.param(
        mutate("listen", {"http": "127.0.0.1:50051"}),
        'listen.grpc "127.0.0.1:50051" is the same as listen.http',
        id="listen-clash",
    ),
    pytest.param(
        mutate("outlierDetection", {"interval": "0s"}),
        'outlierDetection.interval "0s" is not a positive duration',
        id="outlier-zero-interval",
    ),
    pytest.param(
        mutate("outlierDetection", {"maxEjectionPercent": 0}),
        "outlierDetection.maxEjectionPercent must be between 1 and 100",
        id="outlier-percent",
    ),
    pytest.param(
        mutate("clusters.0.region", "a/b"),
        'clusters[0].region "a/b" is not a valid label value',
        id="region-with-slash",
    ),
    pytest.param(
        mutate("clusters.0.zone", ["x"]), "clusters[0].zone must be a string", id="zone-not-string"
    ),
    pytest.param(
        mutate("apiVersion", "v1"), 'apiVersion "v1" is not supported', id="wrong-api-version"
    ),
    pytest.param(mutate("clusters", {"c1": {}}), "clusters must be a list", id="clusters-not-list"),
    pytest.param(
        mutate("clusters.1.secret", {"name": "Bad_Name"}),
        'clusters[1].secret.name "Bad_Name" is not a valid Kubernetes name',
        id="bad-secret-name",
    ),
]


@pytest.mark.parametrize(("doc", "message"), BAD)
def test_bad_config_fails_with_field_and_fix(tmp_path: Path, doc: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, doc))
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param("", "the config file is empty", id="empty"),
        pytest.param("clusters: [", "is not valid YAML", id="not-yaml"),
        pytest.param("- a\n- b\n", "the document must be a mapping", id="list-document"),
    ],
)
def test_unparseable_files(tmp_path: Path, content: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, content))


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read config file .*nope\.yaml"):
        load_config(tmp_path / "nope.yaml")


def test_validate_on_code_built_config() -> None:
    with pytest.raises(ConfigError, match="clusters is empty"):
        FederationConfig().validate()


def test_vpn_minimal(tmp_path: Path) -> None:
    doc = textwrap.dedent(
        """
        topology: vpn
        clusters:
        - {name: a, secret: {name: a}}
        - {name: b, secret: {name: b, key: config}}
        """
    )
    config = load_config(write(tmp_path, doc))
    assert config.topology is Topology.VPN
    assert config.clusters[1].secret is not None and config.clusters[1].secret.key == "config"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("127.0.0.1:9464", ("127.0.0.1", 9464), id="ipv4"),
        pytest.param("[::1]:50051", ("::1", 50051), id="ipv6-brackets-removed"),
        pytest.param("localhost:1", ("localhost", 1), id="name"),
        pytest.param("127.0.0.1", None, id="no-port"),
        pytest.param(":9464", None, id="no-host"),
        pytest.param("127.0.0.1:0", None, id="port-zero"),
        pytest.param("127.0.0.1:65536", None, id="port-too-large"),
        pytest.param("127.0.0.1:http", None, id="port-not-a-number"),
    ],
)
def test_split_host_port(value: str, expected: tuple[str, int] | None) -> None:
    if expected is None:
        with pytest.raises(ValueError, match="host:port"):
            split_host_port(value)
    else:
        assert split_host_port(value) == expected


def test_leader_election_and_gateway_probe_are_parsed(tmp_path: Path) -> None:
    doc = base_doc() | {
        "leaderElection": {"enabled": True, "leaseName": "fed", "leaseDuration": "20s"},
        "gatewayProbe": {"interval": "5s", "failureThreshold": 2, "tls": True},
    }
    config = load_config(write(tmp_path, doc))
    le, probe = config.leader_election, config.gateway_probe
    assert (le.enabled, le.lease_name, le.lease_duration_seconds) == (True, "fed", 20.0)
    assert (le.renew_deadline_seconds, le.retry_period_seconds) == (10.0, 2.0)
    assert (probe.interval_seconds, probe.failure_threshold, probe.tls) == (5.0, 2, True)
    assert (probe.port, probe.timeout_seconds, probe.enabled) == (15443, 1.0, True)
    defaults = load_config(write(tmp_path, base_doc()))
    assert not defaults.leader_election.enabled and defaults.gateway_probe.enabled


@pytest.mark.parametrize(
    ("section", "message"),
    [
        pytest.param(
            {"leaderElection": {"enabled": True, "renewDeadline": "15s"}},
            "renewDeadline must be shorter than leaseDuration",
            id="renew-deadline-not-below-lease",
        ),
        pytest.param(
            {"leaderElection": {"enabled": True, "retryPeriod": "10s"}},
            "retryPeriod must be > 0 and shorter than renewDeadline",
            id="retry-not-below-renew-deadline",
        ),
        pytest.param(
            {"leaderElection": {"enabled": "yes"}},
            "leaderElection.enabled must be true or false",
            id="enabled-not-a-bool",
        ),
        pytest.param(
            {"gatewayProbe": {"timeout": "5s"}},
            "gatewayProbe.timeout must be > 0 and at most gatewayProbe.interval",
            id="probe-timeout-above-interval",
        ),
        pytest.param(
            {"gatewayProbe": {"failureThreshold": 0}},
            "gatewayProbe.failureThreshold must be >= 1",
            id="probe-threshold-zero",
        ),
        pytest.param(
            {"gatewayProbe": {"periode": "3s"}},
            "gatewayProbe.periode is not a known field",
            id="probe-unknown-field",
        ),
    ],
)
def test_bad_ha_settings_fail_with_the_field(
    tmp_path: Path, section: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(write(tmp_path, base_doc() | section))

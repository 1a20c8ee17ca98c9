from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from collectors._core.errors import ConfigError
from collectors.app.config import CollectorConfig, from_mapping, load
from collectors.receivers.prometheus.pull import parse_federation


def test_defaults_are_valid_and_use_standard_ports() -> None:
    config = from_mapping({})
    assert config.http.listen == "127.0.0.1:9201"
    assert config.forward is not None and config.forward.listen.endswith(":24224")
    assert config.otlp is not None and config.otlp.grpc_listen.endswith(":4317")
    assert config.otlp.http_listen.endswith(":4318")
    assert config.statsd is not None and config.statsd.udp_listen == "127.0.0.1:8125"
    assert config.remote_write is not None and config.pull is None


def test_yaml_then_flags_then_set(tmp_path: Path) -> None:
    path = tmp_path / "collectors.yaml"
    path.write_text(
        "resource: {cluster: from-file, region: r1, static_labels: {env: prod}}\n"
        "store: {redis: {url: 'redis://127.0.0.1:6379/0'}}\n"
        "pipeline: {batch: {max_samples: 1000}}\n"
        "pull: {targets: [{cluster: c2, url: 'http://p:9090', selectors: ['up']}]}\n"
        "forward: {enabled: false}\n"
    )
    config = load(
        path,
        overrides={"resource.cluster": "from-flag"},
        assignments=["pipeline.batch.max_samples=2000", "otlp.enabled=false"],
    )
    assert config.pipeline.resource.cluster == "from-flag"
    assert config.pipeline.resource.region == "r1"
    assert dict(config.pipeline.resource.static_labels) == {"env": "prod"}
    assert config.pipeline.batch.max_samples == 2000
    assert config.store.redis.url == "redis://127.0.0.1:6379/0"
    assert config.forward is None and config.otlp is None
    assert config.pull is not None and config.pull.targets[0].selectors == ("up",)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param({"statsdd": {}}, "statsdd is not a known section", id="unknown-section"),
        pytest.param(
            {"http": {"listen": "9201"}}, "http.listen must be host:port", id="listen-no-host"
        ),
        pytest.param(
            {"store": {"redis": {"url": "http://x"}}}, "redis.url must start", id="bad-redis-url"
        ),
        pytest.param(
            {"pipeline": {"batch": {"max_samples": "many"}}},
            "pipeline.batch.max_samples must be an integer",
            id="wrong-type",
        ),
        pytest.param(
            {"pipeline": {"batch": {"max_samples": 500_000}}},
            "store.limits.max_batch_samples",
            id="batch-above-store-limit",
        ),
        pytest.param(
            {"pipeline": {"memory": {"max_in_flight_mib": 8}}},
            "max_in_flight_mib is too small",
            id="in-flight-budget-below-one-request",
        ),
        pytest.param(
            {"remote_write": {"bearer_token_file": "/nonexistent/token"}},
            "bearer_token_file",
            id="missing-token-file",
        ),
        pytest.param(
            {"remote_write": {"max_decompressed_bytes": 0}},
            "remote_write.max_decompressed_bytes",
            id="zero-decompressed-limit",
        ),
        pytest.param(
            {"otlp": {"http_listen": "127.0.0.1:9201"}},
            "both use 127.0.0.1:9201",
            id="port-conflict",
        ),
        pytest.param(
            {"pull": {"targets": [{"cluster": "", "url": "http://p"}]}},
            "pull.targets[0].cluster",
            id="pull-target-without-cluster",
        ),
        pytest.param(
            {"pull": {"targets": [{"cluster": "c", "url": "p:9090"}]}},
            "pull.targets[0].url",
            id="pull-target-bad-url",
        ),
        pytest.param(
            {"resource": {"static_labels": {"bad-name": "x"}}},
            "resource.static_labels",
            id="bad-static-label",
        ),
        pytest.param(
            {"pipeline": {"resource": {"cluster": "c"}}},
            "top level",
            id="resource-inside-pipeline",
        ),
        pytest.param({"forward": {"enabled": "no"}}, "forward.enabled", id="enabled-not-bool"),
        pytest.param({"http": {"port": 1}}, "http.port is not a known", id="unknown-field"),
        pytest.param(
            {"statsd": {"max_queued_flushes": 4}},  # StatsD keeps no queue of flushes
            "statsd.max_queued_flushes is not a known setting",
            id="statsd-unknown-field",
        ),
        pytest.param(
            {"statsd": {"tcp_listen": "127.0.0.1:4317"}},
            "both use 127.0.0.1:4317",
            id="statsd-port-conflict",
        ),
        pytest.param(
            {"store": {"redis": {"embedded_appendfsync": False}}},  # what YAML makes of `no`
            "YAML reads an unquoted yes, no, on, off, true or false as a boolean, so quote",
            id="unquoted-no-read-as-false",
        ),
        pytest.param(
            {"store": {"redis": {"embedded_appendfsync": "sometimes"}}},
            "embedded_appendfsync must be always, everysec or no",
            id="appendfsync-unknown",
        ),
    ],
)
def test_invalid_configuration_names_the_field(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=None) as e:
        from_mapping(data)
    assert message in str(e.value)


def test_quoted_no_reaches_redis_as_its_policy() -> None:
    config = load(None, overrides={}, assignments=["store.redis.embedded_appendfsync='no'"])
    assert config.store.redis.embedded_appendfsync == "no"


def test_bad_set_assignment() -> None:
    with pytest.raises(ConfigError, match=r"section\.field=value"):
        load(None, overrides={}, assignments=["justtext"])


def test_config_is_frozen() -> None:
    with pytest.raises(AttributeError):
        CollectorConfig().http = None  # type: ignore[misc]


FEDERATE = """# TYPE up untyped
up{instance="a:9090",job="prometheus"} 1 1700000000123
# TYPE http_requests_total counter
# HELP http_requests_total Requests.
http_requests_total{code="200",cluster="own"} 7 1700000000123
no_timestamp 3
"""


def test_parse_federation_adds_cluster_unless_present() -> None:
    samples, metadata = parse_federation(FEDERATE, cluster="c1", now_ms=5)
    got = {(s.name, s.labels.get("cluster"), s.timestamp_ms, s.value) for s in samples}
    assert got == {
        ("up", "c1", 1700000000123, 1.0),
        ("http_requests_total", "own", 1700000000123, 7.0),
        ("no_timestamp", "c1", 5, 3.0),
    }
    assert {m.name for m in metadata} >= {"up", "http_requests"}

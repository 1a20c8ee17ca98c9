"""The policy sections of federation.yaml (egress, access, trust domains): parsed strictly, and
every bad input refused at start-up with the YAML path of the field in the message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from federator.core.config_parse import load_config
from federator.core.config_policy import (
    AccessOperation,
    AccessRule,
    AccessSource,
    EgressPort,
    EgressRule,
    hosts_overlap,
)
from federator.core.model import ClusterId, ServiceKey
from federator.errors import ConfigError


def base_doc() -> dict[str, Any]:
    return {
        "clusters": [
            {"name": c, "kubeconfig": {"path": "/kc", "context": c}} for c in ("c1", "c2", "c3")
        ],
    }


def load(tmp_path: Path, **sections: Any) -> Any:
    doc = base_doc()
    doc.update(sections)
    path = tmp_path / "federation.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load_config(path)


GOOD_EGRESS = {
    "rootNamespace": "istio-system",
    "allow": [
        {"host": "api.example.com", "ports": [443]},
        {"host": "*.example.org", "ports": [{"number": 80, "protocol": "http"}], "protocol": "TLS"},
        {"host": "db.example.net", "ports": [5432], "protocol": "TCP", "namespaces": ["shop"]},
    ],
}
GOOD_ACCESS = [
    {
        "service": "default/reviews",
        "rules": [
            {
                "from": [{"namespaces": ["shop"], "serviceAccounts": ["frontend"]}],
                "to": [{"methods": ["GET"], "paths": ["/reviews/*"]}],
            }
        ],
    }
]


def test_policy_sections_parse_into_settings(tmp_path: Path) -> None:
    config = load(tmp_path, egress=GOOD_EGRESS, access=GOOD_ACCESS)
    assert config.egress.allow == (
        EgressRule(host="api.example.com", ports=(EgressPort(443, "TLS"),)),
        EgressRule(host="*.example.org", ports=(EgressPort(80, "HTTP"),)),
        EgressRule(host="db.example.net", ports=(EgressPort(5432, "TCP"),), namespaces=("shop",)),
    )
    assert config.egress.namespaces() == ("istio-system", "shop")
    assert [r.host for r in config.egress.rules_for("shop")] == ["db.example.net"]
    (access,) = config.access
    assert access.service == ServiceKey("default", "reviews")
    assert access.rules == (
        AccessRule(
            sources=(AccessSource(namespaces=("shop",), service_accounts=("frontend",)),),
            operations=(AccessOperation(methods=("GET",), paths=("/reviews/*",)),),
        ),
    )
    assert config.trust.trust_domain == "cluster.local"


def test_trust_domains_per_cluster_and_aliases(tmp_path: Path) -> None:
    doc = base_doc()
    doc["clusters"][1]["trustDomain"] = "east.example"
    path = tmp_path / "federation.yaml"
    path.write_text(yaml.safe_dump({**doc, "trustDomainAliases": ["east.example"]}))
    config = load_config(path)
    assert config.cluster(ClusterId("c2")).trust_domain == "east.example"
    assert config.trust.accepted == ("cluster.local", "east.example")


def _c2_trust(domain: str) -> list[dict[str, Any]]:
    clusters = base_doc()["clusters"]
    clusters[1]["trustDomain"] = domain
    return clusters


BAD: list[Any] = [
    pytest.param(
        {
            "egress": {
                "allow": [
                    {"host": "*.example.com", "ports": [443], "protocol": "TLS"},
                    {"host": "api.example.com", "ports": [80, 443], "protocol": "HTTPS"},
                ]
            }
        },
        "egress.allow[1].ports[1] 443/HTTPS",
        id="overlapping-hosts-conflicting-port-protocol",
    ),
    pytest.param(
        {
            "egress": {
                "allow": [
                    {"host": "api.example.com", "ports": [443], "namespaces": ["a", "b"]},
                    {"host": "api.example.com", "ports": [8443], "namespaces": ["b"]},
                ]
            }
        },
        'egress.allow[1].host "api.example.com" is already allowed by egress.allow[0]',
        id="same-host-twice-in-a-namespace",
    ),
    pytest.param(
        {
            "egress": {
                "allow": [
                    {"host": "api.example.com", "ports": [443]},
                    {"host": "api.example.com", "ports": [80], "namespaces": ["istio-system"]},
                ]
            }
        },
        'egress.allow[1].host "api.example.com" is already allowed by egress.allow[0]',
        id="mesh-wide-and-root-namespace-entry-are-one-object",
    ),
    pytest.param(
        {
            "egress": {
                "allow": [
                    {"host": "api.example.com", "ports": [443]},
                    {
                        "host": "api.example.com",
                        "ports": [{"number": 443, "protocol": "HTTPS"}],
                        "namespaces": ["shop"],
                    },
                ]
            }
        },
        "egress.allow[1].ports[0] 443/HTTPS",
        id="mesh-wide-and-namespace-entry-disagree-on-a-port",
    ),
    pytest.param(
        {"egress": {"allow": [{"host": "api.example.com", "ports": [443, 443]}]}},
        "egress.allow[0].ports[1] 443 is listed twice",
        id="port-twice-in-an-entry",
    ),
    pytest.param(
        {"egress": {"allow": [{"host": "*.example.com", "ports": [5432], "protocol": "TCP"}]}},
        "egress.allow[0].ports[0].protocol TCP cannot be used with the wildcard host",
        id="wildcard-tcp",
    ),
    pytest.param(
        {"egress": {"allow": [{"host": "api.example.com", "ports": [443], "protocol": "UDP"}]}},
        'egress.allow[0].ports[0].protocol "UDP" is not one of',
        id="unknown-protocol",
    ),
    pytest.param(
        {"egress": {"allow": [{"host": "https://api.example.com", "ports": [443]}]}},
        'egress.allow[0].host "https://api.example.com" is not an external host name',
        id="url-as-host",
    ),
    pytest.param(
        {"egress": {"allow": [{"host": "api.example.com", "ports": []}]}},
        "egress.allow[0].ports is empty",
        id="no-ports",
    ),
    pytest.param(
        {"egress": {"allow": [{"host": "api.example.com", "ports": [70000]}]}},
        "egress.allow[0].ports[0] 70000 is not a port number",
        id="port-out-of-range",
    ),
    pytest.param(
        {"egress": {"allow": [{"host": "api.example.com", "ports": [443], "namespace": "x"}]}},
        "egress.allow[0].namespace is not a known field",
        id="misspelt-key",
    ),
    pytest.param(
        {"egress": {"allow": [{"host": "a.example.com", "ports": [443], "namespaces": ["A"]}]}},
        'egress.allow[0].namespaces[0] "A" is not a valid Kubernetes name',
        id="bad-namespace",
    ),
    pytest.param(
        {"access": [{"service": "default/reviews", "rules": [{"from": [{"clusters": ["c9"]}]}]}]},
        'access[0].rules[0].from[0].clusters[0] "c9" is not a member cluster',
        id="unknown-cluster",
    ),
    pytest.param(
        {"clusters": _c2_trust("east.example")},
        'clusters[1].trustDomain "east.example" is not among the mesh\'s trust domains',
        id="mismatched-trust-domain",
    ),
    pytest.param(
        {"trustDomain": "spiffe://cluster.local"},
        'trustDomain "spiffe://cluster.local" is not a trust domain',
        id="trust-domain-with-scheme",
    ),
    pytest.param(
        {"trustDomainAliases": ["cluster.local"]},
        'trustDomainAliases[0] "cluster.local" is listed twice (or is trustDomain)',
        id="alias-repeats-trust-domain",
    ),
    pytest.param(
        {
            "access": [
                {
                    "service": "default/reviews",
                    "rules": [{"from": [{"clusters": ["c1"], "namespaces": ["shop"]}]}],
                }
            ]
        },
        'access[0].rules[0].from[0].clusters[0] "c1" has the trust domain "cluster.local" of c2, '
        "c3 too",
        id="clusters-indistinguishable-by-trust-domain",
    ),
    pytest.param(
        {
            "access": [
                {
                    "service": "default/reviews",
                    "rules": [{"from": [{"serviceAccounts": ["frontend"]}]}],
                }
            ]
        },
        "access[0].rules[0].from[0].serviceAccounts needs access[0].rules[0].from[0].namespaces",
        id="service-account-without-namespace",
    ),
    pytest.param(
        {"access": [{"service": "default/reviews", "rules": [{"from": []}]}]},
        "access[0].rules[0].from is empty",
        id="rule-without-from",
    ),
    pytest.param(
        {"access": [{"service": "reviews", "rules": []}]},
        'access[0].service "reviews" is not a global service',
        id="service-without-namespace",
    ),
    pytest.param(
        {"access": [{"service": "default/reviews", "rules": []}]},
        "access[0].rules is empty",
        id="no-rules",
    ),
    pytest.param(
        {
            "access": [
                {"service": "default/reviews", "rules": [{"from": [{"namespaces": ["a"]}]}]},
                {"service": "default/reviews", "rules": [{"from": [{"namespaces": ["b"]}]}]},
            ]
        },
        'access[1].service "default/reviews" already has a policy in access[0]',
        id="service-twice",
    ),
    pytest.param(
        {
            "access": [
                {
                    "service": "default/reviews",
                    "rules": [{"from": [{"namespaces": ["a"]}], "to": [{"methods": ["get"]}]}],
                }
            ]
        },
        'access[0].rules[0].to[0].methods[0] "get" is not an HTTP method',
        id="lowercase-method",
    ),
    pytest.param(
        {
            "access": [
                {
                    "service": "default/reviews",
                    "rules": [{"from": [{"namespaces": ["a"]}], "to": [{"paths": ["/a/*/b"]}]}],
                }
            ]
        },
        'access[0].rules[0].to[0].paths[0] "/a/*/b" is not a path Istio matches',
        id="wildcard-inside-path",
    ),
]


@pytest.mark.parametrize(("sections", "message"), BAD)
def test_bad_policy_is_refused_naming_the_field(
    tmp_path: Path, sections: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, **sections)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("a", "b", "overlap"),
    [
        pytest.param("api.example.com", "api.example.com", True, id="same"),
        pytest.param("*.example.com", "api.example.com", True, id="wildcard-covers"),
        pytest.param("api.example.com", "*.example.com", True, id="covered-by-wildcard"),
        pytest.param("*.example.com", "*.a.example.com", True, id="nested-wildcards"),
        pytest.param("*.example.com", "example.com", False, id="wildcard-not-apex"),
        pytest.param("api.example.com", "web.example.com", False, id="siblings"),
        pytest.param("*.example.com", "api.badexample.com", False, id="suffix-not-label"),
    ],
)
def test_hosts_overlap(a: str, b: str, overlap: bool) -> None:
    assert hosts_overlap(a, b) is overlap

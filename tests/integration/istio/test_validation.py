"""Every object meshfed writes passes istiod's own validation, and istiod reports no conflict
or rejected config for them.

Istio's validation runs in admission: the sandbox registers istiod's validating webhook in
each apiserver as the base chart does, and istiod switches it to fail-closed once it answers.
So an object that exists was accepted by Istio; an invalid one is refused with Istio's message.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.helpers.federator_harness import app_docs, apply, get_json, kubectl
from tests.helpers.istio import IstioSandbox, clusterset_host, gateways, outbound, wait_served

CONTEXTS = ("c1", "c2", "c3")
KINDS = ("serviceentries.networking.istio.io", "destinationrules.networking.istio.io")


@pytest.fixture(scope="module")
def details(istio_sandbox: IstioSandbox, mesh_federator: str) -> Iterator[str]:
    """A service exported from c1 and c2, federated into all three clusters."""
    name = "details"
    for ctx, n in (("c1", 1), ("c2", 1)):
        apply(istio_sandbox.kubeconfig, ctx, app_docs(name, replicas=n))
    wait_served(
        istio_sandbox, "c3", outbound(clusterset_host(name), 9080),
        lambda v: gateways(v) == {"127.0.1.1": 1, "127.0.2.1": 1}, what="details federated",
    )  # fmt: skip
    yield name
    for ctx in ("c1", "c2"):
        kubectl(
            istio_sandbox.kubeconfig, ctx, "delete", "deployment,service", name,
            "--wait=false", check=False,
        )  # fmt: skip


@pytest.mark.parametrize("context", [pytest.param(c, id=c) for c in CONTEXTS])
def test_webhook_is_registered_and_fail_closed(istio_sandbox: IstioSandbox, context: str) -> None:
    hook = get_json(
        istio_sandbox.kubeconfig, context, "validatingwebhookconfigurations",
        "istiod-default-validator",
    )  # fmt: skip
    (webhook,) = hook["webhooks"]
    port = istio_sandbox.cluster(context).istiod.https
    assert webhook["clientConfig"]["url"] == f"https://127.0.0.1:{port}/validate"
    assert webhook["clientConfig"]["caBundle"], "istiod did not patch in its caBundle"
    assert webhook["failurePolicy"] == "Fail"


@pytest.mark.parametrize("context", [pytest.param(c, id=c) for c in CONTEXTS])
def test_meshfed_objects_pass_istio_validation(
    istio_sandbox: IstioSandbox, details: str, context: str
) -> None:
    """Re-submitted through admission (server dry-run), each object is accepted again."""
    for kind in KINDS:
        obj = get_json(istio_sandbox.kubeconfig, context, kind, f"meshfed-{details}")
        assert obj is not None, f"no {kind} meshfed-{details} in {context}"
        for key in ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"):
            obj["metadata"].pop(key, None)
        obj.pop("status", None)
        out = kubectl(
            istio_sandbox.kubeconfig, context, "apply", "--dry-run=server",
            "--server-side", "--field-manager=conformance", "-f", "-",
            stdin=json.dumps(obj), check=False,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
    metrics = istio_sandbox.metrics(context)
    assert "galley_validation_failed" not in metrics, metrics
    for resource in ("serviceentries", "destinationrules"):
        assert f'galley_validation_passed{{group="networking.istio.io",resource="{resource}"' in (
            metrics
        )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param(
            {
                "kind": "ServiceEntry",
                "spec": {
                    "hosts": ["bad.default.svc.clusterset.local"],
                    "location": "MESH_INTERNAL",
                    "resolution": "STATIC",
                    "ports": [{"number": 9080, "name": "http", "protocol": "HTTP"}],
                    "endpoints": [{"address": "gw.example.com", "ports": {"http": 15443}}],
                },
            },
            'endpoint address "gw.example.com" is not a valid IP address',
            id="static-serviceentry-with-hostname-gateway",
        ),
        pytest.param(
            {
                "kind": "DestinationRule",
                "spec": {
                    "host": "bad.default.svc.clusterset.local",
                    "trafficPolicy": {
                        "loadBalancer": {
                            "localityLbSetting": {
                                "enabled": True,
                                "failover": [{"from": "region-a", "to": "region-a"}],
                            }
                        }
                    },
                },
            },
            "locality lb failover settings must specify different regions",
            id="failover-to-the-same-region",
        ),
    ],
)
def test_invalid_objects_are_refused_with_istios_message(
    istio_sandbox: IstioSandbox, spec: dict[str, Any], message: str
) -> None:
    doc = {
        "apiVersion": "networking.istio.io/v1",
        "metadata": {"name": "invalid", "namespace": "default"},
        **spec,
    }
    out = kubectl(
        istio_sandbox.kubeconfig, "c2", "create", "-f", "-", stdin=yaml.safe_dump(doc), check=False
    )
    assert out.returncode != 0, "istiod's webhook accepted an invalid object"
    assert 'admission webhook "validation.istio.io" denied the request' in out.stderr
    assert message in out.stderr


def _metric(text: str, name: str) -> float:
    """Sum of every sample of ``name`` (0 when istiod never recorded one)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name)] in " {":
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.mark.parametrize("context", [pytest.param(c, id=c) for c in CONTEXTS])
def test_no_conflict_or_rejected_config(
    istio_sandbox: IstioSandbox, details: str, context: str
) -> None:
    configz = istio_sandbox.debug(context, "/debug/configz").json()
    names = {(c["kind"], c["metadata"]["name"]) for c in configz}
    assert {("ServiceEntry", f"meshfed-{details}"), ("DestinationRule", f"meshfed-{details}")} <= (
        names
    )
    # the last push's problems by kind; "no instances" is a moment without ready endpoints
    # (an entry written before its pods were Ready), not a conflict or a rejection
    problems = {
        kind: sorted(entries)
        for kind, entries in istio_sandbox.debug(context, "/debug/push_status").json().items()
        if kind != "pilot_eds_no_instances"
    }
    assert not {k: v for k, v in problems.items() if any("clusterset.local" in e for e in v)}
    metrics = istio_sandbox.metrics(context)
    for name in (
        "pilot_total_xds_rejects",
        "pilot_xds_push_context_errors",
        "pilot_conflict_inbound_listener",
        "pilot_conflict_outbound_listener_tcp_over_current_tcp",
        "pilot_duplicate_envoy_clusters",
        "pilot_vservice_dup_domain",
    ):
        assert _metric(metrics, name) == 0, f"{name} in {context}: {_metric(metrics, name)}"

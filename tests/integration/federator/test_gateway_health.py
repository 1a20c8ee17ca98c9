"""R4: a remote east-west gateway stops answering, then comes back.

The sandbox's gateway addresses have real listeners (``tests.helpers.gateways``, on the
probe port the federator tests use); stopping c2's is the fault. c2's gateway endpoint
leaves the other clusters' ServiceEntries where they have other endpoints, stays where it
is a service's last endpoint (with a condition), nothing is deleted, and it returns once the
listener answers again.
"""

from __future__ import annotations

import time

from federator.core.model import Reason, ServiceKey
from federator.core.probing import GatewayState
from federator.status import ClusterStatus
from tests.helpers.federator_harness import (
    GATEWAY_IP,
    FederatorThread,
    app_docs,
    apply,
    endpoint_set,
    kubectl,
    pod_ips,
    service_entry,
    wait_for,
    wait_pods,
)
from tests.helpers.gateways import GatewayListener
from tests.helpers.sandbox import RunningSandbox

SHARED, ONLY_C2 = "gw-shared", "gw-only-c2"
"""Exported by c1 (2 pods) and c2 (1 pod); exported by c2 alone (1 pod)."""


def _gateways(kc: object, context: str, name: str) -> set[str]:
    return {a for a, w in endpoint_set(service_entry(kc, context, name)) if w is not None}  # type: ignore[arg-type]


def _down(cluster: ClusterStatus | None) -> ClusterStatus | None:
    return cluster if cluster is not None and cluster.gateway.state is GatewayState.DOWN else None


def test_gateway_loss_withdraws_but_keeps_last_endpoint_then_recovers(
    sandbox: RunningSandbox,
    federator: FederatorThread,
    gateway_listeners: dict[str, GatewayListener],
) -> None:
    kc, c2_gateway = sandbox.kubeconfig, GATEWAY_IP["c2"]
    apply(kc, "c1", app_docs(SHARED, replicas=2))
    apply(kc, "c2", app_docs(SHARED, replicas=1) + app_docs(ONLY_C2, replicas=1))
    wait_pods(kc, "c1", SHARED, 2)
    try:
        wait_for(
            "both gateways in c3",
            lambda: _gateways(kc, "c3", SHARED) == {GATEWAY_IP["c1"], c2_gateway},
        )
        wait_for("c2's gateway in c1", lambda: c2_gateway in _gateways(kc, "c1", SHARED))
        wait_for("c2-only service in c3", lambda: _gateways(kc, "c3", ONLY_C2) == {c2_gateway})

        gateway_listeners["c2"].stop()
        stopped = time.monotonic()
        wait_for(
            "c2's gateway withdrawn in c1 and c3",
            lambda: c2_gateway not in _gateways(kc, "c3", SHARED) | _gateways(kc, "c1", SHARED),
            timeout=25,
            interval=0.2,
        )
        print(f"R4: gateway stopped -> withdrawn everywhere in {time.monotonic() - stopped:.1f} s")
        assert _gateways(kc, "c3", SHARED) == {GATEWAY_IP["c1"]}
        c1_pods = pod_ips(kc, "c1", SHARED)
        assert {a for a, _ in endpoint_set(service_entry(kc, "c1", SHARED))} == c1_pods
        # The last endpoint stays, reported; nothing was deleted.
        assert _gateways(kc, "c3", ONLY_C2) == _gateways(kc, "c1", ONLY_C2) == {c2_gateway}
        # The status is refreshed from the prober once a second (reactor/reporter.py): the
        # withdrawal may be seen in the clusters before the status shows the probe's verdict.
        cluster = wait_for(
            "c2's gateway reported down in the status",
            lambda: _down(federator.status.cluster("c2")),
            timeout=5,
            interval=0.1,
        )
        assert cluster is not None and cluster.gateway.state is GatewayState.DOWN
        assert federator.metric("meshfed_federator_gateway_up", {"cluster": "c2"}) == 0
        service = federator.status.service(ServiceKey("default", ONLY_C2))
        assert service is not None
        kept = {c.cluster for c in service.conditions if c.reason == Reason.LAST_ENDPOINT_KEPT}
        assert kept == {"c1", "c3"}
        for context in ("c1", "c3"):
            assert service_entry(kc, context, SHARED) is not None
        assert (
            federator.metric(
                "meshfed_federator_objects_pruned_total", {"cluster": "c3", "kind": "ServiceEntry"}
            )
            == 0
        )

        gateway_listeners["c2"].start()
        restarted = time.monotonic()
        wait_for(
            "c2's gateway back in c1 and c3",
            lambda: c2_gateway in _gateways(kc, "c3", SHARED) & _gateways(kc, "c1", SHARED),
            timeout=15,
            interval=0.2,
        )
        print(
            f"R4: gateway answering -> back in all clusters in {time.monotonic() - restarted:.1f} s"
        )
        wait_for(
            "condition cleared",
            lambda: (
                not any(
                    c.reason == Reason.LAST_ENDPOINT_KEPT
                    for c in federator.status.service(ServiceKey("default", ONLY_C2)).conditions  # type: ignore[union-attr]
                )
            ),
            timeout=10,
        )
    finally:
        gateway_listeners["c2"].start()
        kubectl(kc, "c1", "delete", "deployment,service", SHARED, "--wait=false", check=False)
        kubectl(
            kc, "c2", "delete", "deployment,service", SHARED, ONLY_C2, "--wait=false", check=False
        )

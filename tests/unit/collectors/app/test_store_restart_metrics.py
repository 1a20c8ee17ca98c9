"""``/metrics``' view of the embedded Redis's supervision: restarts by reason, failures, up."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from collectors.app.store_restart_metrics import StoreRestartMetrics
from collectors.store.supervisor import RestartPolicy, RestartState


def test_restarts_failures_and_up_follow_the_supervisor_state() -> None:
    state = RestartState(policy=RestartPolicy())
    registry = CollectorRegistry()
    registry.register(StoreRestartMetrics(state=state))

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("meshfed_store_restarts_total", reason="killed") == 0  # present from the start
    assert value("meshfed_store_embedded_up") == 1
    state.died(10.0)
    state.failed("embedded Redis exited with 1")
    assert value("meshfed_store_embedded_up") == 0
    assert value("meshfed_store_restart_failures_total") == 1
    state.restarted("killed", 11.0)
    state.died(100.0)
    state.restarted("exited", 101.0)
    assert value("meshfed_store_restarts_total", reason="killed") == 1
    assert value("meshfed_store_restarts_total", reason="exited") == 1
    assert value("meshfed_store_embedded_up") == 1

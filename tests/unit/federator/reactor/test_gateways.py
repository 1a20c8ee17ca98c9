"""The gateway prober over real caches and a scripted probe (no sockets): the threshold marks
a gateway down, the exporter's keys are offered, one success brings it back; no address means
nothing is probed."""

from __future__ import annotations

from federator.core.model import ClusterId, ServiceKey
from federator.core.probing import GatewayState
from federator.metrics import FederatorMetrics
from federator.reactor.gateways import GatewayProber
from tests.helpers.federator_builders import make_config
from tests.unit.federator.reactor.test_sources_reporter import C1, C2, Sink, cache, exported

REVIEWS = ServiceKey("default", "reviews")


class Script:
    """Answers probes from a list of results (None: answered)."""

    def __init__(self, *results: str | None) -> None:
        self.results = list(results)
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int, timeout: float, tls: bool) -> str | None:
        self.calls.append((host, port))
        return self.results.pop(0)


def prober(script: Script, sink: Sink) -> GatewayProber:
    config = make_config(names=("c1", "c2"), addresses={"c2": "192.0.2.2"})
    caches = {C1: cache(C1), C2: cache(C2, exported("default", "reviews"))}
    return GatewayProber(
        config=config, caches=caches, sink=sink, metrics=FederatorMetrics(), probe=script
    )


async def test_threshold_down_then_one_success_up() -> None:
    sink, script = Sink(), Script("refused", "refused", "refused", None)
    p = prober(script, sink)
    states = [(await p.probe_once(C2)).state for _ in range(4)]
    assert states == [GatewayState.UP, GatewayState.UP, GatewayState.DOWN, GatewayState.UP]
    assert script.calls[0] == ("192.0.2.2", 15443)
    assert sink.keys == [REVIEWS, REVIEWS]  # offered when it went down and when it came back
    assert p._caches[C2].gateway_healthy


async def test_down_gateway_is_carried_into_the_view() -> None:
    p = prober(Script("x", "x", "x"), Sink())
    for _ in range(3):
        await p.probe_once(C2)
    assert not p._caches[C2].view().gateway_healthy
    assert p.health[C2].failures == 3


async def test_no_address_is_not_probed() -> None:
    script = Script()
    p = prober(script, Sink())
    health = await p.probe_once(ClusterId("c1"))  # c1: no configured or observed address
    assert health.state is GatewayState.UNKNOWN and script.calls == []

"""Judge what one cluster's istiod serves against a demo expectation.

Pure: the inputs are the virtual hosts of the port's RDS route table (the load generator's
model of Envoy's routes, :mod:`meshfed.loadgen.envoy`) and the EDS view of the service's
outbound cluster (:mod:`meshfed.mesh.views`); the runner fetches them over ADS. Each check
answers ``(holds, what was seen)`` so the table can show the served value when it does not hold.
"""

from __future__ import annotations

from meshfed.demo.plan import (
    PORT,
    Drained,
    Expectation,
    Exported,
    FaultRoute,
    HeaderRoute,
    Weights,
    host,
)
from meshfed.loadgen.model import MatchKind, Route, VirtualHost, find_virtual_host
from meshfed.mesh.views import ClusterView


def _header_route(vh: VirtualHost, header: tuple[str, str]) -> Route | None:
    """The first route whose matchers include ``name: exact value``."""
    name, value = header
    for r in vh.routes:
        for h in r.headers:
            if h.name == name and h.kind is MatchKind.EXACT and h.value == value and not h.invert:
                return r
    return None


def _targets(r: Route) -> str:
    return " ".join(f"{t.subset or '-'}:{t.weight}" for t in r.targets)


def _routes_text(vh: VirtualHost) -> str:
    return "; ".join(f"{r.name}[{_targets(r)}]" for r in vh.routes)


def check_routes(
    expect: HeaderRoute | FaultRoute | Weights, hosts: tuple[VirtualHost, ...] | None
) -> tuple[bool, str]:
    """An RDS expectation against the virtual hosts of the service port's route table."""
    if hosts is None:
        return False, f"no route table {PORT}"
    vh = find_virtual_host(hosts, host(expect.service), PORT)
    if vh is None:
        return False, f"no virtual host for {expect.service}"
    if isinstance(expect, Weights):
        default = vh.routes[-1] if vh.routes else None
        if default is None:
            return False, "no route"
        # One destination is a plain ``cluster`` route in Envoy: all of the traffic.
        single = len(default.targets) == 1
        got = tuple((t.subset, 100 if single else t.weight) for t in default.targets)
        return sorted(got) == sorted(expect.weights), "weights " + " ".join(
            f"{s or '-'}:{w}" for s, w in got
        )
    found = _header_route(vh, expect.header)
    if found is None:
        return False, f"no {expect.header[0]} route: {_routes_text(vh)}"
    if isinstance(expect, HeaderRoute):
        subsets = [t.subset for t in found.targets]
        return subsets == [expect.subset], f"{expect.header[1]} -> {','.join(subsets) or '-'}"
    fault = found.fault
    if fault is None:
        return False, f"{expect.header[1]} route without fault"
    if expect.delay_ms:
        ok = fault.delay_ms == expect.delay_ms and fault.delay_percent == 100.0
        return ok, f"delay {fault.delay_ms / 1000:g}s at {fault.delay_percent:g}%"
    ok = fault.abort_status == expect.abort_status and fault.abort_percent == 100.0
    return ok, f"abort {fault.abort_status} at {fault.abort_percent:g}%"


def check_endpoints(
    expect: Drained | Exported, view: ClusterView | None, gateway_of: dict[str, str]
) -> tuple[bool, str]:
    """An EDS expectation against the service's outbound cluster; ``gateway_of`` maps each
    member cluster to its east-west gateway address."""
    if view is None:
        return False, f"no cluster for {expect.service}"
    where = {a: c for c, a in gateway_of.items()}
    via = sorted({where.get(e.address, "local") for e in view.endpoints})
    seen = f"{len(view.endpoints)} endpoints via {','.join(via) or '-'}"
    if not view.endpoints:
        return False, seen
    if isinstance(expect, Exported):
        return set(expect.via) <= set(via), seen
    drained = gateway_of.get(expect.cluster)
    return all(e.address != drained for e in view.endpoints), seen


def is_rds(expect: Expectation) -> bool:
    return isinstance(expect, HeaderRoute | FaultRoute | Weights)

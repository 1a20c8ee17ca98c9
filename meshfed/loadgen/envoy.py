"""Envoy's RDS/EDS messages (as istiod serves them) -> the load generator's plain model.

Pure (no sockets). The Envoy message classes come from the optional ``xds-protos`` package
and are imported inside the functions that need them, so importing ``meshfed.loadgen`` does
not require it. What is read:

- a ``RouteConfiguration``'s virtual hosts (domains) and routes: path prefix, header matchers
  (``string_match`` and the older ``exact_match``/``prefix_match``/... forms, ``present_match``,
  ``invert_match``), ``route.cluster`` or ``route.weighted_clusters``, ``direct_response``,
  and the per-route HTTP fault filter config (``envoy.filters.http.fault``: fixed delay and
  abort status, each with its ``FractionalPercent``; the fault's own header matchers);
- a ``ClusterLoadAssignment``'s endpoints with their locality, priority, weight and health;
  the member cluster an endpoint leads to is looked up by address first (east-west gateways,
  pod IPs), then by locality (``region/zone``), else it is the locality itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from meshfed.loadgen.model import (
    EndpointPick,
    Fault,
    HeaderMatch,
    MatchKind,
    Route,
    Target,
    VirtualHost,
)

FAULT_FILTER = "envoy.filters.http.fault"
_DENOMINATORS = {0: 100.0, 1: 10_000.0, 2: 1_000_000.0}
"""``FractionalPercent.DenominatorType``: HUNDRED, TEN_THOUSAND, MILLION."""


def percent(fraction: Any) -> float:
    """A ``FractionalPercent`` as a percentage (0..100)."""
    return 100.0 * float(fraction.numerator) / _DENOMINATORS.get(int(fraction.denominator), 100.0)


def _string_match(sm: Any) -> tuple[MatchKind, str]:
    which = sm.WhichOneof("match_pattern")
    if which == "exact":
        return MatchKind.EXACT, sm.exact
    if which == "prefix":
        return MatchKind.PREFIX, sm.prefix
    if which == "suffix":
        return MatchKind.SUFFIX, sm.suffix
    if which == "safe_regex":
        return MatchKind.REGEX, sm.safe_regex.regex
    if which == "contains":
        return MatchKind.REGEX, f".*{re.escape(sm.contains)}.*"
    return MatchKind.PRESENT, ""


def header_match(hm: Any) -> HeaderMatch:
    """One Envoy ``HeaderMatcher``."""
    which = hm.WhichOneof("header_match_specifier")
    kind, value = MatchKind.PRESENT, ""
    if which == "string_match":
        kind, value = _string_match(hm.string_match)
    elif which == "exact_match":
        kind, value = MatchKind.EXACT, hm.exact_match
    elif which == "prefix_match":
        kind, value = MatchKind.PREFIX, hm.prefix_match
    elif which == "suffix_match":
        kind, value = MatchKind.SUFFIX, hm.suffix_match
    elif which == "safe_regex_match":
        kind, value = MatchKind.REGEX, hm.safe_regex_match.regex
    elif which == "present_match":
        # present_match: false asks for the header's absence
        invert = bool(hm.invert_match) != (not hm.present_match)
        return HeaderMatch(hm.name.lower(), MatchKind.PRESENT, "", invert)
    return HeaderMatch(hm.name.lower(), kind, value, bool(hm.invert_match))


def fault_of(route: Any) -> Fault | None:
    """The route's HTTP fault config (with the fault's own header matchers)."""
    # lazily: xds-protos is an optional extra, needed only once istiod's routes are read
    from envoy.extensions.filters.http.fault.v3 import fault_pb2  # type: ignore[import-untyped]  # noqa: PLC0415

    HTTPFault = fault_pb2.HTTPFault  # noqa: N806

    config = route.typed_per_filter_config.get(FAULT_FILTER)
    if config is None:
        return None
    fault = HTTPFault()
    if not config.Unpack(fault):
        return None
    delay_ms = delay_pct = 0.0
    abort_status, abort_pct = 0, 0.0
    if fault.HasField("delay") and fault.delay.HasField("fixed_delay"):
        d = fault.delay.fixed_delay
        delay_ms = d.seconds * 1000.0 + d.nanos / 1e6
        delay_pct = percent(fault.delay.percentage)
    if fault.HasField("abort") and fault.abort.WhichOneof("error_type") == "http_status":
        abort_status = int(fault.abort.http_status)
        abort_pct = percent(fault.abort.percentage)
    headers = tuple(header_match(h) for h in fault.headers)
    return Fault(delay_ms, delay_pct, abort_status, abort_pct, headers)


def route_of(r: Any) -> Route:
    """One Envoy ``Route``."""
    match = r.match
    prefix = match.prefix if match.WhichOneof("path_specifier") == "prefix" else None
    if match.WhichOneof("path_specifier") == "path":
        prefix = match.path
    headers = tuple(header_match(h) for h in match.headers)
    fault = fault_of(r)
    targets: tuple[Target, ...] = ()
    direct = 0
    action = r.WhichOneof("action")
    if action == "route":
        spec = r.route.WhichOneof("cluster_specifier")
        if spec == "cluster":
            targets = (Target(r.route.cluster, 1),)
        elif spec == "weighted_clusters":
            targets = tuple(
                Target(c.name, c.weight.value if c.HasField("weight") else 1)
                for c in r.route.weighted_clusters.clusters
            )
    elif action == "direct_response":
        direct = int(r.direct_response.status)
    return Route(r.name, headers, prefix, targets, fault, direct)


def virtual_hosts(route_config: Any) -> tuple[VirtualHost, ...]:
    """The virtual hosts of one ``RouteConfiguration``."""
    return tuple(
        VirtualHost(tuple(vh.domains), tuple(route_of(r) for r in vh.routes))
        for vh in route_config.virtual_hosts
    )


def endpoints_of(
    cla: Any, *, by_address: Mapping[str, str], by_locality: Mapping[str, str]
) -> tuple[EndpointPick, ...]:
    """The endpoints of one ``ClusterLoadAssignment``, each with its member cluster."""
    out: list[EndpointPick] = []
    for group in cla.endpoints:
        loc = group.locality
        locality = "/".join(p for p in (loc.region, loc.zone, loc.sub_zone) if p)
        short = "/".join(p for p in (loc.region, loc.zone) if p)
        for lb in group.lb_endpoints:
            sock = lb.endpoint.address.socket_address
            address = sock.address
            cluster = by_address.get(address) or by_locality.get(short) or locality or "unknown"
            # HealthStatus: UNKNOWN (0) and HEALTHY (1) take traffic; the others do not.
            healthy = lb.health_status in (0, 1)
            weight = lb.load_balancing_weight.value if lb.HasField("load_balancing_weight") else 1
            out.append(
                EndpointPick(address, cluster, locality, weight, int(group.priority), healthy)
            )
    return tuple(out)

"""A plain mapping (the Drill resource's ``spec``, or the CLI's YAML file) -> ``DrillSpec``.

Every problem is a ``DrillSpecError`` whose message starts with the field's path
(``spec.steps[2].abort.percentage: must be between 0 and 100``), so admission, ``plan`` and
the CLI show the same line. Unknown fields are refused too: ``FIELDS`` lists what the parser
reads at each path, and a unit test holds the CRD's OpenAPI schema to the same list, so the
two cannot drift apart.

Scalars (``federator.core.drills.values``): PromQL is parsed with ``promql-parser`` (the same
Rust parser the store's engine uses); durations are Prometheus durations (``30s``, ``5m``,
``1h30m``). What needs the live federation (do the services, clusters and regions exist?) is
``federator.core.drills.check.check_against``, separate because it needs the desired state.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from federator.core.drills.spec import (
    API_VERSION,
    KIND,
    Abort,
    Action,
    Delay,
    Drain,
    DrillSpec,
    Guard,
    HeaderMatch,
    Hypothesis,
    MatchKind,
    Preconditions,
    Route,
    Scope,
    Shift,
    Step,
    SubsetRef,
    WeightedSubset,
)
from federator.core.drills.values import dns_label, duration_seconds, nonempty, promql
from federator.core.model import ClusterId, ServiceKey
from federator.errors import DrillSpecError

T = TypeVar("T")

_GUARD = frozenset({"name", "expr", "interval", "for"})
_FAULT = frozenset({"percentage", "headers"})
FIELDS: Mapping[str, frozenset[str]] = {
    "spec": frozenset(
        {
            "services",
            "scope",
            "steps",
            "abortWhen",
            "preconditions",
            "ttl",
            "allowOutage",
            "hypothesis",
            "halt",
        }
    ),
    "spec.services[]": frozenset({"namespace", "name"}),
    "spec.scope": frozenset({"clusters", "regions"}),
    "spec.steps[]": frozenset(
        {"name", "duration", "services", "drain", "delay", "abort", "shift", "route"}
    ),
    "spec.steps[].services[]": frozenset({"namespace", "name"}),
    "spec.steps[].drain": frozenset({"clusters", "regions"}),
    "spec.steps[].delay": _FAULT | {"fixedDelay"},
    "spec.steps[].delay.headers{}": frozenset(MatchKind),
    "spec.steps[].abort": _FAULT | {"httpStatus"},
    "spec.steps[].abort.headers{}": frozenset(MatchKind),
    "spec.steps[].shift": frozenset({"destinations"}),
    "spec.steps[].shift.destinations[]": frozenset({"version", "cluster", "weight"}),
    "spec.steps[].route": frozenset({"headers", "version", "cluster"}),
    "spec.steps[].route.headers{}": frozenset(MatchKind),
    "spec.abortWhen[]": _GUARD,
    "spec.preconditions": frozenset({"notWhen"}),
    "spec.preconditions.notWhen[]": frozenset({"name", "expr"}),
    "spec.hypothesis": frozenset({"description", "steadyState"}),
    "spec.hypothesis.steadyState[]": _GUARD,
}
"""Schema path (``[]``: every list item, ``{}``: every map value) -> the keys read there."""
STEP_KINDS = ("drain", "delay", "abort", "shift", "route")
_HEADER_NAME = re.compile(r"^[a-z0-9!#$%&'*+.^_`|~-]+$")


def _schema_path(path: str) -> str:
    path = re.sub(r"\[\d+\]", "[]", path)
    return re.sub(r"\.headers\..+$", ".headers{}", path)


class _Obj:
    """A mapping at ``path``: typed field access; unknown keys are refused on creation."""

    def __init__(self, value: Any, path: str) -> None:
        if not isinstance(value, Mapping):
            raise DrillSpecError(path, f"must be a mapping, not {type(value).__name__}")
        allowed = FIELDS[_schema_path(path)]
        for key in value:
            if key not in allowed:
                raise DrillSpecError(
                    f"{path}.{key}", f"unknown field; known: {', '.join(sorted(allowed))}"
                )
        self.value, self.path = value, path

    def has(self, key: str) -> bool:
        return self.value.get(key) is not None

    def get(self, key: str, conv: Callable[[Any, str], T], default: T) -> T:
        return conv(self.value[key], f"{self.path}.{key}") if self.has(key) else default

    def need(self, key: str, conv: Callable[[Any, str], T]) -> T:
        if not self.has(key):
            raise DrillSpecError(f"{self.path}.{key}", "is required")
        return conv(self.value[key], f"{self.path}.{key}")


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise DrillSpecError(path, "must be true or false")
    return value


def _percentage(value: Any, path: str) -> float:
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else math.nan
    if not 0 <= number <= 100:
        raise DrillSpecError(path, f"must be a number between 0 and 100, not {value!r}")
    return float(number)


def _int_in(low: int, high: int) -> Callable[[Any, str], int]:
    def conv(value: Any, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise DrillSpecError(path, f"must be an integer between {low} and {high}")
        return value

    return conv


def _list(
    value: Any, path: str, item: Callable[[Any, str], T], *, empty: bool = True, most: int = 50
) -> tuple[T, ...]:
    """A list of at most ``most`` items (the CRD's ``maxItems``: CEL rules are costed by it)."""
    if not isinstance(value, list):
        raise DrillSpecError(path, "must be a list")
    if not value and not empty:
        raise DrillSpecError(path, "must not be empty")
    if len(value) > most:
        raise DrillSpecError(path, f"must have at most {most} items, not {len(value)}")
    return tuple(item(v, f"{path}[{i}]") for i, v in enumerate(value))


def _unique(values: tuple[T, ...], path: str, what: str) -> tuple[T, ...]:
    seen: set[T] = set()
    for i, v in enumerate(values):
        if v in seen:
            raise DrillSpecError(f"{path}[{i}]", f'{what} "{v}" is listed twice')
        seen.add(v)
    return values


def _service(value: Any, path: str) -> ServiceKey:
    obj = _Obj(value, path)
    return ServiceKey(obj.need("namespace", nonempty), obj.need("name", nonempty))


def _strings(value: Any, path: str) -> tuple[str, ...]:
    return _unique(_list(value, path, nonempty, most=64), path, "value")


def _clusters(value: Any, path: str) -> tuple[ClusterId, ...]:
    return tuple(ClusterId(c) for c in _strings(value, path))


def _headers(value: Any, path: str) -> tuple[HeaderMatch, ...]:
    if not isinstance(value, Mapping) or not value:
        raise DrillSpecError(path, 'must be a non-empty mapping like {"end-user": {exact: jason}}')
    out = []
    for name in sorted(value, key=str):
        where = f"{path}.{name}"
        if not isinstance(name, str) or not _HEADER_NAME.match(name):
            raise DrillSpecError(where, "header names are lower-case HTTP tokens")
        obj = _Obj(value[name], where)
        kinds = [k for k in MatchKind if obj.has(k.value)]
        if len(kinds) != 1:
            raise DrillSpecError(where, "set exactly one of exact, prefix, regex")
        text = obj.need(kinds[0].value, nonempty)
        if kinds[0] is MatchKind.REGEX:
            try:
                re.compile(text)
            except re.error as exc:
                raise DrillSpecError(
                    f"{where}.regex", f"is not a regular expression: {exc}"
                ) from exc
        out.append(HeaderMatch(name=name, kind=kinds[0], value=text))
    return tuple(out)


def _subset(obj: _Obj) -> SubsetRef:
    has_version, has_cluster = obj.has("version"), obj.has("cluster")
    if has_version == has_cluster:
        raise DrillSpecError(obj.path, "set exactly one of version (a pod label) and cluster")
    if has_version:
        return SubsetRef(version=obj.need("version", nonempty))
    return SubsetRef(cluster=ClusterId(obj.need("cluster", nonempty)))


def _drain(obj: _Obj) -> Drain:
    drain = Drain(obj.get("clusters", _clusters, ()), obj.get("regions", _strings, ()))
    if not drain.clusters and not drain.regions:
        raise DrillSpecError(obj.path, "name at least one cluster or region to drain")
    return drain


def _delay(obj: _Obj) -> Delay:
    fixed = obj.need("fixedDelay", nonempty)
    duration_seconds(fixed, f"{obj.path}.fixedDelay")
    return Delay(obj.need("percentage", _percentage), fixed, obj.get("headers", _headers, ()))


def _abort(obj: _Obj) -> Abort:
    status = obj.need("httpStatus", _int_in(200, 599))
    return Abort(obj.need("percentage", _percentage), status, obj.get("headers", _headers, ()))


def _destination(value: Any, path: str) -> WeightedSubset:
    obj = _Obj(value, path)
    return WeightedSubset(_subset(obj), obj.need("weight", _int_in(0, 100)))


def _shift(obj: _Obj) -> Shift:
    path = f"{obj.path}.destinations"
    dests = obj.need("destinations", lambda v, p: _list(v, p, _destination, empty=False, most=10))
    _unique(tuple(d.subset for d in dests), path, "subset")
    total = sum(d.weight for d in dests)
    if total != 100:
        raise DrillSpecError(path, f"weights must sum to 100, not {total}")
    return Shift(dests)


def _route(obj: _Obj) -> Route:
    return Route(obj.need("headers", _headers), _subset(obj))


_KINDS: Mapping[str, Callable[[_Obj], Action]] = {
    "drain": _drain,
    "delay": _delay,
    "abort": _abort,
    "shift": _shift,
    "route": _route,
}


def _step_parser(services: tuple[ServiceKey, ...]) -> Callable[[Any, str], Step]:
    def step(value: Any, path: str) -> Step:
        obj = _Obj(value, path)
        kinds = [k for k in STEP_KINDS if obj.has(k)]
        if len(kinds) != 1:
            raise DrillSpecError(path, f"set exactly one step kind of {', '.join(STEP_KINDS)}")
        own: tuple[ServiceKey, ...] = obj.get("services", lambda v, p: _list(v, p, _service), ())
        for i, key in enumerate(own):
            if key not in services:
                raise DrillSpecError(f"{path}.services[{i}]", f"{key} is not in spec.services")
        action = _KINDS[kinds[0]](_Obj(obj.value[kinds[0]], f"{path}.{kinds[0]}"))
        if isinstance(action, Drain) and own:
            raise DrillSpecError(f"{path}.services", "a drain withdraws whole clusters: omit it")
        return Step(
            name=obj.need("name", dns_label),
            duration_seconds=obj.need("duration", duration_seconds),
            action=action,
            services=own,
        )

    return step


def _guard(*, timed: bool) -> Callable[[Any, str], Guard]:
    def guard(value: Any, path: str) -> Guard:
        obj = _Obj(value, path)
        out = Guard(name=obj.need("name", dns_label), expr=obj.need("expr", promql))
        if not timed:
            return out
        interval = obj.get("interval", duration_seconds, out.interval_seconds)
        zero = obj.value.get("for") in ("0", "0s")
        hold = 0.0 if zero else obj.get("for", duration_seconds, 0.0)
        if interval < 1:
            raise DrillSpecError(f"{path}.interval", "must be at least 1s")
        return Guard(out.name, out.expr, interval, hold)

    return guard


def _guards(value: Any, path: str, *, timed: bool = True) -> tuple[Guard, ...]:
    guards = _list(value, path, _guard(timed=timed), most=20)
    _unique(tuple(g.name for g in guards), path, "name")
    return guards


def parse_spec(spec: Any, *, name: str, generation: int = 0) -> DrillSpec:
    """The validated ``DrillSpec`` of a resource named ``name`` from its ``spec`` mapping."""
    name = dns_label(name, "metadata.name")
    obj = _Obj(spec, "spec")
    services = obj.need("services", lambda v, p: _list(v, p, _service, empty=False))
    _unique(services, "spec.services", "service")
    steps = obj.need(
        "steps", lambda v, p: _list(v, p, _step_parser(services), empty=False, most=20)
    )
    _unique(tuple(s.name for s in steps), "spec.steps", "step name")
    scope = obj.get("scope", _Obj, None)
    pre = obj.get("preconditions", _Obj, None)
    hyp = obj.get("hypothesis", _Obj, None)
    result = DrillSpec(
        name=name,
        services=services,
        steps=steps,
        ttl_seconds=obj.need("ttl", duration_seconds),
        scope=Scope(scope.get("clusters", _clusters, ()), scope.get("regions", _strings, ()))
        if scope
        else Scope(),
        abort_when=obj.get("abortWhen", _guards, ()),
        preconditions=Preconditions(pre.get("notWhen", _untimed, ())) if pre else Preconditions(),
        hypothesis=_hypothesis(hyp) if hyp else Hypothesis(),
        allow_outage=obj.get("allowOutage", _bool, False),
        halt=obj.get("halt", _bool, False),
        generation=generation,
    )
    aborts = {g.name for g in result.abort_when}
    for i, guard in enumerate(result.hypothesis.steady_state):
        if guard.name in aborts:
            raise DrillSpecError(
                f"spec.hypothesis.steadyState[{i}].name",
                f'"{guard.name}" is also an abortWhen name',
            )
    if result.ttl_seconds < result.total_duration_seconds:
        raise DrillSpecError(
            "spec.ttl",
            f"must be at least the sum of the step durations "
            f"({result.total_duration_seconds:g}s), not {result.ttl_seconds:g}s",
        )
    return result


def _hypothesis(obj: _Obj) -> Hypothesis:
    return Hypothesis(obj.get("description", nonempty, ""), obj.get("steadyState", _guards, ()))


def _untimed(value: Any, path: str) -> tuple[Guard, ...]:
    return _guards(value, path, timed=False)


def parse_drill(document: Any) -> DrillSpec:
    """A whole ``Drill`` object (``apiVersion``, ``kind``, ``metadata``, ``spec``)."""
    if not isinstance(document, Mapping):
        raise DrillSpecError("(document)", "must be a mapping with apiVersion, kind, metadata")
    if document.get("apiVersion") != API_VERSION:
        raise DrillSpecError("apiVersion", f"must be {API_VERSION}")
    if document.get("kind") != KIND:
        raise DrillSpecError("kind", f"must be {KIND}")
    meta = document.get("metadata")
    if not isinstance(meta, Mapping):
        raise DrillSpecError("metadata", "must be a mapping with a name")
    generation = meta.get("generation", 0)
    if not isinstance(generation, int):
        raise DrillSpecError("metadata.generation", "must be an integer")
    name = dns_label(meta.get("name"), "metadata.name")
    return parse_spec(document.get("spec"), name=name, generation=generation)

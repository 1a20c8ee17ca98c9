"""Drill spec parsing: every field's validation names the field; the live-federation check."""

from __future__ import annotations

from typing import Any

import pytest

from federator.core.drills.check import check_against
from federator.core.drills.parse import parse_drill
from federator.core.drills.spec import (
    Abort,
    Delay,
    Drain,
    HeaderMatch,
    MatchKind,
    Route,
    Shift,
    SubsetRef,
    WeightedSubset,
)
from federator.core.model import ClusterId, ServiceKey
from federator.errors import DrillSpecError, PermanentError
from tests.helpers.federator_builders import REVIEWS
from tests.unit.federator.core.drills.builders import (
    BY_REGION,
    RATINGS,
    base_spec,
    document,
    drill,
)

JASON = {"end-user": {"exact": "jason"}}
DELAY = {"delay": {"percentage": 100, "fixedDelay": "7s", "headers": JASON}}
SHIFT = {
    "shift": {"destinations": [{"version": "v1", "weight": 50}, {"version": "v3", "weight": 50}]}
}


def test_full_spec_parses_into_frozen_values() -> None:
    spec = parse_drill(
        document(
            base_spec(
                DELAY,
                scope={"clusters": ["c1"], "regions": ["region-b"]},
                preconditions={"notWhen": [{"name": "busy", "expr": "up == 0"}]},
                hypothesis={"description": "ratings survives", "steadyState": [
                    {"name": "p99", "expr": "vector(1) > 2", "interval": "5s"}]},
                allowOutage=True,
                halt=False,
            )
        )
    )  # fmt: skip
    assert spec.name == "drill-1"
    assert spec.generation == 3
    assert spec.services == (REVIEWS, RATINGS)
    assert spec.ttl_seconds == 600
    (step,) = spec.steps
    assert step.duration_seconds == 60
    assert step.kind == "delay"
    assert step.action == Delay(100.0, "7s", (HeaderMatch("end-user", MatchKind.EXACT, "jason"),))
    assert spec.abort_when[0].interval_seconds == 1
    assert spec.abort_when[0].for_seconds == 30
    assert spec.scope.clusters == (ClusterId("c1"),)
    assert spec.scope.regions == ("region-b",)
    assert spec.preconditions.not_when[0].name == "busy"
    assert spec.hypothesis.steady_state[0].interval_seconds == 5
    assert spec.allow_outage is True


@pytest.mark.parametrize(
    ("step", "action"),
    [
        pytest.param(
            {"drain": {"regions": ["region-a"]}}, Drain(regions=("region-a",)), id="drain-region"
        ),
        pytest.param(
            {"abort": {"percentage": 50.5, "httpStatus": 503}}, Abort(50.5, 503), id="abort"
        ),
        pytest.param(
            SHIFT,
            Shift(
                (
                    WeightedSubset(SubsetRef(version="v1"), 50),
                    WeightedSubset(SubsetRef(version="v3"), 50),
                )
            ),
            id="shift-versions",
        ),
        pytest.param(
            {"shift": {"destinations": [{"cluster": "c2", "weight": 100}]}},
            Shift((WeightedSubset(SubsetRef(cluster=ClusterId("c2")), 100),)),
            id="shift-cluster",
        ),
        pytest.param(
            {"route": {"headers": {"end-user": {"prefix": "ja"}}, "version": "v2"}},
            Route((HeaderMatch("end-user", MatchKind.PREFIX, "ja"),), SubsetRef(version="v2")),
            id="route-prefix",
        ),
    ],
)
def test_step_kinds(step: dict[str, Any], action: object) -> None:
    assert drill(step).steps[0].action == action


def _set(path: list[Any], value: Any) -> Any:
    """A mutation of the base document: set ``value`` at ``path`` (None deletes)."""

    def apply(doc: dict[str, Any]) -> None:
        target: Any = doc
        for key in path[:-1]:
            target = target[key]
        if value is None:
            del target[path[-1]]
        elif isinstance(target, list) and path[-1] == len(target):
            target.append(value)
        else:
            target[path[-1]] = value

    return apply


STEP0 = ["spec", "steps", 0]
BAD = [
    pytest.param(_set(["apiVersion"], "v1"), "apiVersion", "must be meshfed.io/v1alpha1",
                 id="wrong-api-version"),
    pytest.param(_set(["metadata", "name"], "Bad_Name"), "metadata.name", "DNS label",
                 id="bad-name"),
    pytest.param(_set(["spec", "services"], []), "spec.services", "must not be empty",
                 id="no-services"),
    pytest.param(_set(["spec", "services", 1], {"namespace": "default", "name": "reviews"}),
                 "spec.services[1]", "listed twice", id="duplicate-service"),
    pytest.param(_set(["spec", "services", 0, "name"], None), "spec.services[0].name",
                 "is required", id="service-without-name"),
    pytest.param(_set(["spec", "colour"], "red"), "spec.colour", "unknown field",
                 id="unknown-field"),
    pytest.param(_set([*STEP0, "delay", "percentage"], 101), "spec.steps[0].delay.percentage",
                 "between 0 and 100", id="delay-percentage-over-100"),
    pytest.param(_set([*STEP0, "delay", "percentage"], -1), "spec.steps[0].delay.percentage",
                 "between 0 and 100", id="delay-percentage-negative"),
    pytest.param(_set([*STEP0, "delay", "percentage"], "50%"), "spec.steps[0].delay.percentage",
                 "number", id="percentage-string"),
    pytest.param(_set([*STEP0, "delay", "fixedDelay"], "seven"),
                 "spec.steps[0].delay.fixedDelay", "not a duration", id="bad-fixed-delay"),
    pytest.param(_set([*STEP0, "delay", "headers"], {"end-user": {"exact": "a", "prefix": "b"}}),
                 "spec.steps[0].delay.headers.end-user", "exactly one of exact, prefix, regex",
                 id="header-two-matchers"),
    pytest.param(_set([*STEP0, "delay", "headers"], {"end-user": {"suffix": "x"}}),
                 "spec.steps[0].delay.headers.end-user.suffix", "unknown field",
                 id="header-unknown-matcher"),
    pytest.param(_set([*STEP0, "delay", "headers"], {"End User": {"exact": "x"}}),
                 "spec.steps[0].delay.headers.End User", "lower-case", id="header-bad-name"),
    pytest.param(_set([*STEP0, "delay", "headers"], {"end-user": {"regex": "(("}}),
                 "spec.steps[0].delay.headers.end-user.regex", "not a regular expression",
                 id="header-bad-regex"),
    pytest.param(_set([*STEP0, "delay", "headers"], {}), "spec.steps[0].delay.headers",
                 "non-empty mapping", id="headers-empty"),
    pytest.param(_set([*STEP0, "abort"], {"percentage": 10, "httpStatus": 700}),
                 "spec.steps[0]", "exactly one step kind", id="two-step-kinds"),
    pytest.param(_set([*STEP0, "duration"], "5 minutes"), "spec.steps[0].duration",
                 "not a duration", id="bad-step-duration"),
    pytest.param(_set([*STEP0, "duration"], 30), "spec.steps[0].duration",
                 "duration string", id="number-duration"),
    pytest.param(_set([*STEP0, "duration"], "0s"), "spec.steps[0].duration",
                 "greater than 0", id="zero-duration"),
    pytest.param(_set([*STEP0, "name"], None), "spec.steps[0].name", "is required",
                 id="step-without-name"),
    pytest.param(_set(["spec", "steps", 1], {"name": "step-one", "duration": "1m", **DELAY}),
                 "spec.steps[1]", 'step name "step-one" is listed twice', id="duplicate-step"),
    pytest.param(_set([*STEP0, "services"], [{"namespace": "default", "name": "details"}]),
                 "spec.steps[0].services[0]", "not in spec.services", id="step-foreign-service"),
    pytest.param(_set(["spec", "ttl"], "30s"), "spec.ttl",
                 "at least the sum of the step durations (60s)", id="ttl-shorter-than-steps"),
    pytest.param(_set(["spec", "ttl"], None), "spec.ttl", "is required", id="no-ttl"),
    pytest.param(_set(["spec", "abortWhen", 0, "expr"], "sum(rate(x[1m]) >"),
                 "spec.abortWhen[0].expr", "is not valid PromQL", id="promql-does-not-parse"),
    pytest.param(_set(["spec", "abortWhen", 0, "expr"], "x[5m]"), "spec.abortWhen[0].expr",
                 "range vector", id="promql-range-vector"),
    pytest.param(_set(["spec", "abortWhen", 0, "interval"], "500ms"),
                 "spec.abortWhen[0].interval", "at least 1s", id="guard-interval-too-short"),
    pytest.param(_set(["spec", "abortWhen", 0, "for"], "-1s"), "spec.abortWhen[0].for",
                 "not a duration", id="guard-bad-for"),
    pytest.param(_set(["spec", "abortWhen", 1], {"name": "errors", "expr": "up"}),
                 "spec.abortWhen[1]", "listed twice", id="duplicate-guard"),
    pytest.param(_set(["spec", "preconditions"], {"notWhen": [{"name": "x", "expr": "up +"}]}),
                 "spec.preconditions.notWhen[0].expr", "not valid PromQL",
                 id="precondition-promql"),
    pytest.param(_set(["spec", "preconditions"], {"notWhen": [{"name": "x", "expr": "up",
                                                               "for": "1m"}]}),
                 "spec.preconditions.notWhen[0].for", "unknown field",
                 id="precondition-with-for"),
    pytest.param(_set(["spec", "hypothesis"], {"steadyState": [{"name": "s", "expr": "up{"}]}),
                 "spec.hypothesis.steadyState[0].expr", "not valid PromQL",
                 id="steady-state-promql"),
    pytest.param(_set(["spec", "hypothesis"], {"steadyState": [{"name": "errors", "expr": "up"}]}),
                 "spec.hypothesis.steadyState[0].name", "also an abortWhen name",
                 id="steady-state-name-clash"),
    pytest.param(_set(["spec", "abortWhen"], [{"name": f"g{i}", "expr": "up"} for i in range(21)]),
                 "spec.abortWhen", "at most 20 items", id="too-many-guards"),
    pytest.param(_set([*STEP0, "delay", "headers"], {1: {"exact": "x"}}),
                 "spec.steps[0].delay.headers.1", "lower-case", id="header-name-not-a-string"),
    pytest.param(_set(["spec", "allowOutage"], "yes"), "spec.allowOutage", "true or false",
                 id="allow-outage-not-bool"),
    pytest.param(_set(["spec", "scope"], {"clusters": ["c1", "c1"]}), "spec.scope.clusters[1]",
                 "listed twice", id="scope-duplicate-cluster"),
]  # fmt: skip


@pytest.mark.parametrize(("mutate", "field", "fragment"), BAD)
def test_bad_specs_name_the_field(mutate: Any, field: str, fragment: str) -> None:
    doc = document(base_spec(DELAY))
    mutate(doc)
    with pytest.raises(DrillSpecError) as info:
        parse_drill(doc)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")
    assert fragment in str(info.value)
    assert isinstance(info.value, PermanentError)


@pytest.mark.parametrize(
    ("step", "field", "fragment"),
    [
        pytest.param({"abort": {"percentage": 120, "httpStatus": 503}},
                     "spec.steps[0].abort.percentage", "between 0 and 100",
                     id="abort-percentage"),
        pytest.param({"abort": {"percentage": 10, "httpStatus": 700}},
                     "spec.steps[0].abort.httpStatus", "between 200 and 599", id="abort-status"),
        pytest.param({"abort": {"percentage": 10, "httpStatus": 199}},
                     "spec.steps[0].abort.httpStatus", "between 200 and 599",
                     id="abort-status-low"),
        pytest.param({"shift": {"destinations": [{"version": "v1", "weight": 60},
                                                 {"version": "v3", "weight": 50}]}},
                     "spec.steps[0].shift.destinations", "sum to 100, not 110",
                     id="weights-not-100"),
        pytest.param({"shift": {"destinations": [{"version": "v1", "weight": 101}]}},
                     "spec.steps[0].shift.destinations[0].weight", "between 0 and 100",
                     id="weight-out-of-range"),
        pytest.param({"shift": {"destinations": [{"version": "", "weight": 100}]}},
                     "spec.steps[0].shift.destinations[0].version", "non-empty",
                     id="empty-version"),
        pytest.param({"shift": {"destinations": [{"version": "v1", "cluster": "c1",
                                                  "weight": 100}]}},
                     "spec.steps[0].shift.destinations[0]", "exactly one of version",
                     id="version-and-cluster"),
        pytest.param({"shift": {"destinations": [{"version": "v1", "weight": 50},
                                                 {"version": "v1", "weight": 50}]}},
                     "spec.steps[0].shift.destinations[1]", "listed twice",
                     id="same-subset-twice"),
        pytest.param({"shift": {"destinations": []}}, "spec.steps[0].shift.destinations",
                     "must not be empty", id="no-destinations"),
        pytest.param({"route": {"version": "v2"}}, "spec.steps[0].route.headers", "is required",
                     id="route-without-headers"),
        pytest.param({"route": {"headers": JASON}}, "spec.steps[0].route",
                     "exactly one of version", id="route-without-subset"),
        pytest.param({"drain": {}}, "spec.steps[0].drain", "at least one cluster or region",
                     id="drain-nothing"),
        pytest.param({"drain": {"regions": ["region-a"]},
                      "services": [{"namespace": "default", "name": "ratings"}]},
                     "spec.steps[0].services", "omit it", id="drain-with-services"),
    ],
)  # fmt: skip
def test_bad_steps_name_the_field(step: dict[str, Any], field: str, fragment: str) -> None:
    with pytest.raises(DrillSpecError) as info:
        drill(step)
    assert info.value.field == field
    assert fragment in str(info.value)


def test_for_zero_means_first_evaluation() -> None:
    doc = document(base_spec(DELAY))
    doc["spec"]["abortWhen"][0]["for"] = "0s"
    assert parse_drill(doc).abort_when[0].for_seconds == 0


def test_check_against_names_unknown_service_cluster_and_region() -> None:
    spec = drill(
        {"shift": {"destinations": [{"cluster": "c9", "weight": 100}]}},
        scope={"clusters": ["c1", "c7"], "regions": ["region-z"]},
    )
    known = frozenset({REVIEWS})
    problems = [str(e) for e in check_against(spec, known, BY_REGION)]
    assert problems == [
        "spec.services[1]: default/ratings is not a global service",
        'spec.scope.clusters[1]: unknown cluster "c7"; known: c1, c2, c3',
        'spec.scope.regions[0]: unknown region "region-z"; known: region-a, region-b, region-c',
        'spec.steps[0].shift.destinations[0].cluster: unknown cluster "c9"; known: c1, c2, c3',
    ]


@pytest.mark.parametrize(
    ("step", "field"),
    [
        pytest.param({"drain": {"clusters": ["c4"]}}, "spec.steps[0].drain.clusters[0]",
                     id="drain-cluster"),
        pytest.param({"drain": {"regions": ["mars"]}}, "spec.steps[0].drain.regions[0]",
                     id="drain-region"),
        pytest.param({"route": {"headers": JASON, "cluster": "c4"}}, "spec.steps[0].route.cluster",
                     id="route-cluster"),
    ],
)  # fmt: skip
def test_check_against_steps(step: dict[str, Any], field: str) -> None:
    (problem,) = check_against(drill(step), frozenset({REVIEWS, RATINGS}), BY_REGION)
    assert problem.field == field


def test_check_against_accepts_a_fitting_spec() -> None:
    spec = drill({"drain": {"regions": ["region-a"], "clusters": ["c2"]}})
    assert check_against(spec, frozenset({REVIEWS, RATINGS}), BY_REGION) == ()


def test_subsets_are_collected_per_service_without_repeats() -> None:
    doc = document(base_spec(SHIFT))
    doc["spec"]["steps"].append(
        {"name": "to-v3", "duration": "1m",
         "shift": {"destinations": [{"version": "v3", "weight": 100}]}}
    )  # fmt: skip
    doc["spec"]["steps"].append(
        {"name": "jason", "duration": "1m", "route": {"headers": JASON, "cluster": "c2"},
         "services": [{"namespace": "default", "name": "ratings"}]}
    )  # fmt: skip
    spec = parse_drill(doc)
    assert [s.name for s in spec.subsets(REVIEWS)] == ["version-v1", "version-v3"]
    assert [s.name for s in spec.subsets(ServiceKey("default", "ratings"))] == [
        "cluster-c2", "version-v1", "version-v3"]  # fmt: skip

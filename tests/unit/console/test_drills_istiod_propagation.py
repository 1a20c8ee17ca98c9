"""The console's newer views: last propagation per matrix cell, a drill's live timeline and
report from the API's Drill object, the drill watch's end without a home cluster, and the
istiod options."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest

from federator.api._generated.meshfed.v1 import federation_pb2 as pb
from federator.api.convert import drill_to_pb
from federator.drillctl.report_html import to_html
from meshfed.console import drill_views, views
from meshfed.console.events import Broadcaster
from meshfed.console.istiod import ENABLE_HINT, IstiodReader
from meshfed.console.settings import (
    ConsoleSettings,
    ConsoleSettingsError,
    IstiodPlace,
    parse_istiods,
)
from meshfed.console.sources import FederatorSource, SourceError
from tests.unit.federator.drillctl.samples import drill_doc, run

pytestmark = pytest.mark.unit


def test_matrix_cells_carry_the_last_propagation_per_target() -> None:
    service = pb.ServiceStatus(
        key=pb.ServiceKey(namespace="ns", name="reviews"),
        exporters=[pb.Exporter(cluster="c1", ready_endpoints=1, total_endpoints=1)],
        targets=[
            pb.TargetApply(cluster="c1", last_propagation_seconds=0.0),
            pb.TargetApply(cluster="c2", last_propagation_seconds=0.42),
            pb.TargetApply(cluster="c3"),  # written, but never after an observed change
        ],
    )
    cells = views.service_row(service, ["c1", "c2", "c3"])["cells"]
    assert cells["c1"]["propagation_s"] == 0.0  # zero is a value, not "unknown"
    assert cells["c2"]["propagation_s"] == 0.42
    assert cells["c3"]["propagation_s"] is None


def test_drill_detail_is_the_reports_timeline_steps_and_guards() -> None:
    doc, journal = run(breach_after=20.0)
    detail = drill_views.drill_detail(drill_to_pb(doc), now=journal.events[-1].at + 5)
    assert (detail["name"], detail["phase"], detail["verdict"]) == ("drill-1", "Aborted", "Refuted")
    report = detail["report"]
    assert report["hypothesis"] == "ratings keeps answering"
    assert len(report["timeline"]) >= len([e for e in journal.events if e.type.value != "Guard"])
    assert report["timeline"][0]["offsetSeconds"] == 0.0
    assert [s["name"] for s in report["steps"]] == ["step-one"]
    assert sorted(report["steps"][0]["propagationSeconds"]) == ["c1", "c2", "c3"]
    assert report["breach"] and "held with value" in report["breach"]
    assert detail["problem"] == ""


def test_drill_detail_without_the_object_says_why() -> None:
    msg = drill_to_pb(drill_doc())
    msg.ClearField("object_json")  # an older federator
    detail = drill_views.drill_detail(msg, now=0.0)
    assert detail["report"] is None and "older version" in detail["problem"]


def test_drill_not_started_has_an_empty_timeline_and_a_note() -> None:
    detail = drill_views.drill_detail(drill_to_pb(drill_doc()), now=0.0)
    report = detail["report"]
    assert report["timeline"] == [] and report["verdict"] == "Pending"
    assert any("no journal yet" in p for p in report["problems"])


def test_full_report_from_the_api_object_is_the_cli_report() -> None:
    doc, journal = run(breach_after=20.0)
    read = drill_views.read_object(drill_to_pb(doc))
    assert read is not None and read.journal is not None
    html = to_html(drill_views.live_report(read, journal.events[-1].at))
    assert "drill-1" in html and "Refuted" in html


class NoHomeFederator:
    """The two streams of a federator without a home cluster: events flow, drills refuse."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.drill_calls = 0

    async def watch(self) -> AsyncIterator[pb.Event]:
        yield pb.Event(sequence=1, op="create", cluster="c2", kind="ServiceEntry", name="x")
        await asyncio.Event().wait()

    async def watch_drills(self) -> AsyncIterator[pb.DrillEvent]:
        self.drill_calls += 1
        raise SourceError(f"federator x: {self.code}: no home cluster.", self.code)
        yield pb.DrillEvent()  # pragma: no cover - makes this an async generator


@pytest.mark.parametrize(
    ("code", "final"),
    [
        pytest.param("FAILED_PRECONDITION", True, id="no-home-cluster-stops"),
        pytest.param("UNAVAILABLE", False, id="unavailable-retries"),
    ],
)
async def test_drill_watch_stops_for_good_only_without_drills(code: str, final: bool) -> None:
    source = NoHomeFederator(code)
    naps: list[float] = []

    async def sleep(seconds: float) -> None:
        naps.append(seconds)
        await asyncio.sleep(0)

    b = Broadcaster(cast(FederatorSource, source), sleep=sleep)
    seen: list[dict[str, Any]] = []
    stream = b.stream(keepalive_s=5)
    seen.append(json.loads((await anext(stream)).removeprefix("data: ")))  # subscribed now
    await b.start()
    try:
        for _ in range(2 if final else 1):
            text = await asyncio.wait_for(anext(stream), 5)
            seen.append(json.loads(text.removeprefix("data: ")))
        for _ in range(20):
            await asyncio.sleep(0)
    finally:
        await b.shutdown()
        await stream.aclose()
    types = [m["type"] for m in seen]
    assert types[0] == "hello" and "event" in types
    if final:
        assert "drills" in types and source.drill_calls == 1 and naps == []
        assert "no home cluster" in b.drills_error
    else:
        assert source.drill_calls > 1 and naps and b.drills_error == ""


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        pytest.param(
            ["c1=127.0.0.1:15010", "c2=localhost:15011"],
            (IstiodPlace("c1", "127.0.0.1:15010"), IstiodPlace("c2", "localhost:15011")),
            id="two-clusters",
        ),
        pytest.param([], (), id="none"),
    ],
)
def test_istiod_flags(values: list[str], expected: tuple[IstiodPlace, ...]) -> None:
    assert parse_istiods(values) == expected


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("127.0.0.1:15010", id="no-name"),
        pytest.param("c1=127.0.0.1", id="no-port"),
        pytest.param("c1=127.0.0.1:xds", id="port-not-a-number"),
    ],
)
def test_bad_istiod_flag_names_the_form(value: str) -> None:
    with pytest.raises(ConsoleSettingsError, match="NAME=HOST:PORT"):
        parse_istiods([value])


def test_a_cluster_twice_is_refused() -> None:
    places = (IstiodPlace("c1", "a:1"), IstiodPlace("c1", "b:2"))
    with pytest.raises(ConsoleSettingsError, match="twice"):
        ConsoleSettings(istiods=places).validate()


async def test_no_istiod_configured_says_how_to_turn_it_on() -> None:
    body = await IstiodReader(()).served("ns", "reviews")
    assert body == {"available": False, "reason": ENABLE_HINT, "clusters": []}


async def test_without_the_mesh_extra_the_page_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As in a plain install: no `envoy` package (xds-protos), nothing of meshfed.mesh loaded.
    for name in [m for m in sys.modules if m.startswith(("envoy.", "meshfed.mesh."))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "envoy", None)
    reader = IstiodReader((IstiodPlace("c1", "127.0.0.1:1"),))
    body = await reader.served("ns", "reviews")
    assert body["available"] is False and body["clusters"] == []
    assert "pip install 'meshfed[mesh]'" in body["reason"]

"""The report's golden signals and exemplars from the real store: Istio-standard counters,
error spans and their access-log lines written into a store with an embedded Redis, served by
its HTTP API, read by the report's ``query_range`` and trace-search calls; the rate, 5xx ratio
and p50/p99 per client cluster and window come out as the series say, the error traces of the
drilled service (not of others, not outside the drill) are linked with their log lines, and
all three formats render from them."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from starlette.types import ASGIApp

from collectors._core.model import LogRecord, Sample, Span, SpanId, StatusCode, TraceId
from collectors.api.app import build_app
from collectors.api.prometheus import PrometheusApiSettings
from collectors.app.http_auth import protect
from collectors.store.config import RedisSettings, StoreSettings
from collectors.store.store import TelemetryStore
from federator.core.drills.journal import Event, EventType, Journal, new_journal, record
from federator.core.drills.parse import parse_drill
from federator.core.drills.spec import DrillSpec
from federator.core.model import ClusterId, ServiceKey
from federator.drillctl.collect import collect
from federator.drillctl.report import build_report
from federator.drillctl.report_html import to_html
from federator.drillctl.report_text import to_json, to_markdown
from federator.drillctl.signals import Signal, Window
from federator.drillctl.store import StoreClient
from tests.helpers.prometheus_remote import Series, serving_async
from tests.integration.drillctl.istio_series import drill_series

pytestmark = pytest.mark.timeout(180)
TOKEN = "store-token-for-drill-reports"
KEY = ServiceKey("shop", "ratings")
TARGETS = (ClusterId("c2"),)
NOW = float(int(time.time()) // 60 * 60)
START = NOW - 400
BREACH = START + 100
FIRST, LAST = int(START - 300), int(NOW)


def drill_spec() -> DrillSpec:
    return parse_drill({
        "apiVersion": "meshfed.io/v1alpha1", "kind": "Drill",
        "metadata": {"name": "ratings-abort", "namespace": "meshfed-system"},
        "spec": {
            "services": [{"namespace": KEY.namespace, "name": KEY.name}],
            "scope": {"clusters": ["c2"]}, "ttl": "10m",
            "steps": [{"name": "abort-25", "duration": "5m",
                       "abort": {"percentage": 25, "httpStatus": 503}}],
            "abortWhen": [{"name": "ratings-5xx", "interval": "10s", "expr":
                           'sum(rate(istio_requests_total{response_code=~"5.."}[30s])) > 5'}],
            "hypothesis": {"description": "ratings in c2 keeps under 5 errors/s with 25 % aborts"},
        },
    })  # fmt: skip


def journal_of(spec: DrillSpec) -> Journal:
    j = new_journal(spec.name, TARGETS)
    events = [
        Event(EventType.STARTED, START),
        Event(EventType.PRECONDITIONS_PASSED, START + 0.05),
        Event(EventType.STEP_STARTED, START + 0.1, step=0),
        *(
            Event(EventType.STEP_APPLIED, START + 0.3 + i * 0.1, step=0, cluster=c,
                  latency=0.2 + i * 0.1)
            for i, c in enumerate(TARGETS)
        ),
        *(
            Event(EventType.GUARD_EVALUATED, START + t, guard="ratings-5xx", value=0.5,
                  holds=False)
            for t in range(10, 100, 10)
        ),
        Event(EventType.GUARD_EVALUATED, BREACH, guard="ratings-5xx", value=12.6, holds=True),
        *(Event(EventType.ROLLBACK_APPLIED, BREACH + 0.4 + i * 0.1, cluster=c)
          for i, c in enumerate(TARGETS)),
        Event(EventType.VERIFIED, BREACH + 1.2, holds=True),
    ]  # fmt: skip
    for e in events:
        j = record(j, spec, e)
    assert j.phase.value == "Aborted", j.phase
    return j


def span(n: int, at: float, *, service: str, error: bool) -> Span:
    return Span(
        trace_id=TraceId(f"{n:032x}"),
        span_id=SpanId(f"{n:016x}"),
        name=f"{service}.{KEY.namespace}.svc.cluster.local:9080/*",
        start_time_unix_nano=int(at * 1e9),
        end_time_unix_nano=int((at + 0.012) * 1e9),
        status_code=StatusCode.ERROR if error else StatusCode.OK,
        attributes={"http.status_code": "503" if error else "200"},
        resource={"service.name": service, "cluster": "c2"},
    )


SPANS = (
    span(1, START + 30, service=KEY.name, error=True),
    span(2, START + 60, service=KEY.name, error=True),
    span(3, START + 45, service=KEY.name, error=False),
    span(4, START + 50, service="reviews", error=True),
    span(5, START - 100, service=KEY.name, error=True),
)
"""Two error traces of the drilled service during the drill; an ok one, another service's,
and one before the drill, none of which is an exemplar."""


def factory(data_dir: Path, series: list[Series], token_file: Path):  # type: ignore[no-untyped-def]
    @contextlib.asynccontextmanager
    async def make() -> AsyncIterator[ASGIApp]:
        store = TelemetryStore(settings=StoreSettings(redis=RedisSettings(data_dir=data_dir)))
        await store.start()
        try:
            await store.write_samples([
                Sample(name=labels["__name__"], timestamp_ms=t, value=v,
                       labels={k: v for k, v in labels.items() if k != "__name__"})
                for labels, points in series
                for t, v in points
            ])  # fmt: skip
            await store.write_spans(SPANS)
            await store.write_logs([
                LogRecord(time_unix_nano=s.start_time_unix_nano, body=f"GET / 503 UF {s.name}",
                          severity_text="error", trace_id=s.trace_id, span_id=s.span_id,
                          resource={"cluster": "c2"})
                for s in SPANS
            ])  # fmt: skip
            app = build_app(store=store, settings=PrometheusApiSettings())
            yield protect(app, token_file=token_file, name="--token-file")
        finally:
            await store.shutdown()

    return make


@pytest.fixture(scope="module")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    series = drill_series(first=FIRST, last=LAST, start=START, end=BREACH + 0.4,
                          service=KEY.name, namespace=KEY.namespace)  # fmt: skip
    data = tmp_path_factory.mktemp("drill-store")
    token_file = data / "token"
    token_file.write_text(TOKEN)
    with serving_async(factory(data, series, token_file)) as url:
        yield url


def test_golden_signals_from_the_store(store_url: str, tmp_path: Path) -> None:
    spec = drill_spec()
    journal = journal_of(spec)
    with StoreClient(store_url, token=TOKEN) as store:
        telemetry = collect(store=store, spec=spec, journal=journal, now=NOW)
    assert telemetry.windows is not None
    assert telemetry.problems == ()
    assert [x.trace_id[-1] for x in telemetry.exemplars] in (["1", "2"], ["2", "1"])
    for x in telemetry.exemplars:
        assert x.url == f"{store_url}/api/traces/{x.trace_id}?logs=true"
        assert x.root == KEY.name
        ((_, cluster, severity, body),) = x.logs
        assert (cluster, severity) == ("c2", "error") and body.startswith("GET / 503 UF")
    obj = {"metadata": {"name": spec.name, "namespace": "meshfed-system"}}
    report = build_report(obj=obj, spec=spec, journal=journal, telemetry=telemetry, now=NOW)
    s = report.summaries[KEY]

    def mean(signal: Signal, cluster: str, window: Window) -> float:
        value = s[signal][cluster].get(window)
        assert value is not None, (signal, cluster, window)
        return value

    for cluster, rate in (("c1", 40.0), ("c2", 50.0), ("c3", 60.0)):
        assert mean(Signal.RATE, cluster, Window.BEFORE) == pytest.approx(rate, rel=0.05)
    assert mean(Signal.ERRORS, "c2", Window.BEFORE) == pytest.approx(0.002, abs=0.001)
    assert mean(Signal.ERRORS, "c2", Window.DURING) > 0.15
    assert mean(Signal.ERRORS, "c1", Window.DURING) < 0.01
    assert mean(Signal.ERRORS, "c2", Window.AFTER) < 0.05
    assert 5 < mean(Signal.P50, "c1", Window.BEFORE) < 10
    assert 25 < mean(Signal.P99, "c1", Window.BEFORE) <= 50
    assert mean(Signal.P99, "c2", Window.DURING) > 1000
    assert report.breach.startswith("guard ratings-5xx held with value 12.6")
    assert report.breach_to_verified == pytest.approx(1.2, abs=0.01)
    assert report.targets == ("c2",) and dict(report.steps[0].latencies) == {"c2": 0.2}
    body = json.loads(json.dumps(to_json(report)))
    assert body["signals"]["shop/ratings"]["error_ratio"]["c2"]["during"] > 0.15
    assert "histogram_quantile(0.99" in body["queries"]["shop/ratings"]["p99_ms"]
    (tmp_path / "report.md").write_text(to_markdown(report))
    page = to_html(report)
    (tmp_path / "report.html").write_text(page)
    assert page.count("<polyline") >= 12


def test_without_the_store_token_the_report_says_so(store_url: str) -> None:
    spec = drill_spec()
    with StoreClient(store_url) as store:
        telemetry = collect(store=store, spec=spec, journal=journal_of(spec), now=NOW)
    assert len(telemetry.problems) == 5
    assert all("HTTP 401" in p for p in telemetry.problems), telemetry.problems
    assert telemetry.exemplars == ()


def test_a_store_that_does_not_answer_is_a_problem_in_the_report() -> None:
    spec = drill_spec()
    journal = journal_of(spec)
    with StoreClient("http://127.0.0.1:9", timeout=2) as store:  # nothing listens on discard
        telemetry = collect(store=store, spec=spec, journal=journal, now=NOW)
    assert len(telemetry.problems) == 5  # four signals and the error traces
    assert all("127.0.0.1:9" in p for p in telemetry.problems)
    obj = {"metadata": {"name": spec.name, "namespace": "meshfed-system"}}
    report = build_report(obj=obj, spec=spec, journal=journal, telemetry=telemetry, now=NOW)
    assert report.verdict == "Refuted" and report.breach
    assert "shop/ratings p99_ms: http://127.0.0.1:9/api/v1/query_range" in to_markdown(report)
    assert "No golden signals" not in to_html(report)

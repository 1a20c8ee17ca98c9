"""Cardinality you can see: ``/api/v1/status/tsdb`` and ``/metrics`` of a real collector.

``Collector`` (what ``meshfed collect`` runs) serves over an embedded Redis with small series
caps and one shard (so the caps are exact: the write script enforces them per shard).
Series of three tenants are remote-written over HTTP as Prometheus sends them; what the
route and ``/metrics`` report — series per tenant, metric and label pair, the caps, the
series and samples refused per tenant and reason — is compared with what was sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from collectors.app.collector import Collector
from collectors.app.config import CollectorConfig, HttpSettings
from collectors.store.config import ChunkSettings, LimitSettings, RedisSettings, StoreSettings
from tests.helpers.remote_write import HEADERS, Series, encode_write_request, snappy_block

pytestmark = pytest.mark.timeout(120)

T0 = 1_700_000_000_000
CAP_TOTAL, CAP_TENANT = 10, 5
SAMPLES = 3
"""Samples per series (each sent in its own request, so refusals repeat per request)."""


@pytest.fixture
async def url(tmp_path: Path) -> AsyncIterator[str]:
    collector = Collector(
        config=CollectorConfig(
            http=HttpSettings(listen="127.0.0.1:0"),
            store=StoreSettings(
                redis=RedisSettings(data_dir=tmp_path / "redis"),
                chunks=ChunkSettings(shards=1),
                limits=LimitSettings(max_series_total=CAP_TOTAL, max_series_per_tenant=CAP_TENANT),
            ),
            statsd=None,
            forward=None,
            otlp=None,
        )
    )
    await collector.start()
    try:
        yield f"http://127.0.0.1:{collector.http_port}"
    finally:
        await collector.shutdown()


def _series(tenant: str, n: int, step: int) -> list[Series]:
    return [
        (
            {
                "__name__": "http_requests_total" if i % 2 else "up",
                "cluster": tenant,
                "instance": f"{tenant}-{i}",
            },
            [(T0 + step * 15_000, float(i + step))],
        )
        for i in range(n)
    ]


async def _send(client: httpx.AsyncClient, series: list[Series]) -> int:
    body = snappy_block(encode_write_request(series))
    r = await client.post("/api/v1/write", content=body, headers=HEADERS)
    return r.status_code


async def _load(client: httpx.AsyncClient) -> None:
    """Tenant a: 8 series (5 kept, 3 over the tenant cap); b: 3; then c: 4 of which 2 fit
    under the total cap (5 + 3 + 2 = 10). Each step is one request per tenant, in order."""
    for step in range(SAMPLES):
        assert await _send(client, _series("a", 8, step)) == 400  # "series limit exceeded"
        assert await _send(client, _series("b", 3, step)) == 204
    for step in range(SAMPLES):
        assert await _send(client, _series("c", 4, step)) == 400


async def test_tsdb_status_reports_what_was_sent_and_refused(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        await _load(client)
        r = await client.get("/api/v1/status/tsdb", params={"limit": "100"})
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "success"
    data = body["data"]
    assert data["headStats"]["numSeries"] == 10
    mesh = data["meshfed"]
    assert mesh["tenantLabel"] == "cluster"
    tenants = {e["name"]: e["value"] for e in mesh["seriesCountByTenant"]}
    assert tenants == {"a": 5, "b": 3, "c": 2}
    assert mesh["limits"]["maxSeriesTotal"] == CAP_TOTAL
    assert mesh["limits"]["maxSeriesPerTenant"] == CAP_TENANT
    refused = {(e["tenant"], e["reason"]): (e["series"], e["samples"]) for e in mesh["refused"]}
    # every request re-offers the refused series: counted once per request, as refusals are
    assert refused == {
        ("a", "max_series_per_tenant"): (3 * SAMPLES, 3 * SAMPLES),
        ("c", "max_series_total"): (2 * SAMPLES, 2 * SAMPLES),
    }
    # instances a-0..a-4, b-0..b-2 and c-0, c-1 were kept: odd ones are http_requests_total
    by_metric = {e["name"]: e["value"] for e in data["seriesCountByMetricName"]}
    assert by_metric == {"up": 3 + 2 + 1, "http_requests_total": 2 + 1 + 1}
    pairs = {e["name"]: e["value"] for e in data["seriesCountByLabelValuePair"]}
    assert pairs["cluster=a"] == 5 and pairs["cluster=c"] == 2 and pairs["instance=b-2"] == 1
    assert "instance=a-7" not in pairs
    values = {e["name"]: e["value"] for e in data["labelValueCountByLabelName"]}
    assert values == {"__name__": 2, "cluster": 3, "instance": 10}
    assert data["headStats"]["numLabelPairs"] == 2 + 3 + 10


@pytest.mark.parametrize(
    ("limit", "expected"),
    [pytest.param("1", 1, id="limit-1"), pytest.param("", 3, id="default-10")],
)
async def test_limit_cuts_every_list(url: str, limit: str, expected: int) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        await _load(client)
        data = (await client.get("/api/v1/status/tsdb", params={"limit": limit})).json()["data"]
    assert len(data["labelValueCountByLabelName"]) == expected
    assert len(data["meshfed"]["seriesCountByTenant"]) == 3  # tenants (clusters): never cut
    assert len(data["seriesCountByLabelValuePair"]) == min(int(limit or 10), 15)


async def test_metrics_expose_series_caps_and_refusals(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        await _load(client)
        text = (await client.get("/metrics")).text
    found = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("meshfed_store_")
    }
    assert found[("meshfed_store_series", ())] == 10
    assert found[("meshfed_store_cardinality_stale", ())] == 0
    for tenant, n in {"a": 5, "b": 3, "c": 2}.items():
        assert found[("meshfed_store_tenant_series", (("tenant", tenant),))] == n
    assert found[("meshfed_store_series_limit", (("limit", "max_series_total"),))] == CAP_TOTAL
    assert (
        found[("meshfed_store_series_limit", (("limit", "max_series_per_tenant"),))] == CAP_TENANT
    )
    a = (("reason", "max_series_per_tenant"), ("tenant", "a"))
    c = (("reason", "max_series_total"), ("tenant", "c"))
    assert found[("meshfed_store_series_refused_total", a)] == 3 * SAMPLES
    assert found[("meshfed_store_series_refused_total", c)] == 2 * SAMPLES
    assert found[("meshfed_store_samples_refused_total", c)] == 2 * SAMPLES
    assert (
        "meshfed_store_series_refused_total",
        (("reason", "max_series_total"), ("tenant", "a")),
    ) not in found

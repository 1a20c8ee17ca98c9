"""meshfed's StatsD receiver against the reference daemon (npm ``statsd`` 0.9), side by side.

The same UDP datagrams (counters, sampled counters, timers with percentiles [90, 99],
gauges with deltas, sets, tags, multi-value lines and bad lines) go from one socket to the
reference daemon and to two meshfed receivers (UDP read in the event loop, and by two worker
processes). All flush every 2 s; the reference's phase is read from its first flush and
meshfed's is the epoch grid, so the datagrams are sent at an instant at least 0.4 s from
every daemon's boundary: the first flush with data and the one after it (idle counters
zeroed, gauges re-sent) must agree field by field (relative tolerance 1e-9). The samples are
then read back from the embedded Redis store. A TCP connection and a flood of bad input
check that the server keeps serving.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from collectors._core.component import WriteResult
from collectors._core.model import LogRecord, MetricMetadata, Sample, Span
from collectors._core.selfmetrics import ReceiverMetricFamilies, ReceiverMetrics
from collectors.promql.source import LabelMatcher, MatchType
from collectors.receivers.statsd.config import StatsdSettings
from collectors.receivers.statsd.receiver import StatsdReceiver
from collectors.store.config import RedisSettings, StoreSettings
from collectors.store.logs import LogQuery
from collectors.store.store import TelemetryStore
from tests.helpers.paths import HELPERS
from tests.helpers.processes import free_port, stop

INTERVAL_MS = 2000
PERCENTILES = (90.0, 99.0)
BACKEND = HELPERS / "statsd_json_backend.js"
NODE_PEERS = Path(
    os.environ.get("MESHFED_NODE_PEERS", Path.home() / ".cache/meshfed/node")
).expanduser()
STATSD_JS = NODE_PEERS / "node_modules/statsd/stats.js"

DATAGRAMS: list[bytes] = [
    b"app.hits:1|c",
    b"app.hits:3|c\napp.hits:2.5|c",
    b"app.sampled:1|c|@0.1",
    b"app.sampled:2|c|@0.25\napp.sampled:1|c|@1",
    b"\n".join(f"app.lat:{v}|ms".encode() for v in range(10, 101, 10)),
    b"app.lat2:5|ms|@0.5\napp.lat2:0.25|ms\napp.lat2:7.125|ms\napp.lat2:1e2|ms",
    b"app.one:7|ms",
    b"app.temp:10|g",
    b"app.temp:+5|g\napp.temp:-2.5|g",
    b"app.newdelta:+4|g",
    b"app.zero:0|g\napp.zero:+3|g",
    b"app.neg:-7|g",
    b"app.users:alice|s\napp.users:bob|s\napp.users:alice|s",
    b"app.empty:|s",
    b"app.multi:1|c:2|c:5|ms",
    b"app.tagged:2|c|#env:prod,az:a",
    b"my key/with:1|c",
    b"app.hex:0x10|c\napp.exp:1e3|c\napp.ws: 2|c",
    b"nocolon\napp.bad:abc|c\napp.bad:1\napp.bad:1|c|@x\napp.bad:-5|ms\napp.bad:1|c|0.5",
    b":|\napp.bad:1|c|\napp.bad:|g\n\n\napp.hits:1|c",
]


class RecordingSink:
    """The store, plus a record of every sample batch handed to it (not the thing tested)."""

    def __init__(self, store: TelemetryStore) -> None:
        self.store = store
        self.samples: list[Sample] = []

    async def write_samples(self, samples: Sequence[Sample]) -> WriteResult:
        self.samples.extend(samples)
        return await self.store.write_samples(samples)

    async def write_metadata(self, metadata: Sequence[MetricMetadata]) -> None:
        await self.store.write_metadata(metadata)

    async def write_spans(self, spans: Sequence[Span]) -> None:
        await self.store.write_spans(spans)

    async def write_logs(self, records: Sequence[LogRecord]) -> None:
        await self.store.write_logs(records)


def _name(*parts: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_:]", "_", ".".join(parts))


def expected_samples(
    flush: dict[str, dict[str, object]],
) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The reference's flush as meshfed names it (``key;t=v`` -> labels)."""
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}

    def put(key: str, suffix: tuple[str, ...], group: str, value: object) -> None:
        name, *tags = key.split(";")
        labels = frozenset(tuple(t.split("=", 1)) for t in tags)  # type: ignore[misc]
        out[(_name("stats", group, name, *suffix), labels)] = float(value)  # type: ignore[arg-type]

    for key, value in flush["counters"].items():
        put(key, ("count",), "counters", value)
        put(key, ("rate",), "counters", flush["counter_rates"][key])
    for key, fields in flush["timer_data"].items():
        for field, value in fields.items():  # type: ignore[attr-defined]
            put(key, (field,), "timers", value)
    for key, value in flush["gauges"].items():
        if key != "statsd.timestamp_lag":
            put(key, (), "gauges", value)
    for key, value in flush["sets"].items():
        put(key, ("count",), "sets", value)
    return out


def meshfed_flushes(
    samples: Sequence[Sample],
) -> dict[int, dict[tuple[str, frozenset[tuple[str, str]]], float]]:
    by_time: dict[int, dict[tuple[str, frozenset[tuple[str, str]]], float]] = {}
    for s in samples:
        labels = frozenset((k, v) for k, v in s.labels.items() if k not in ("cluster", "region"))
        by_time.setdefault(s.timestamp_ms, {})[(s.name, labels)] = s.value
    return by_time


def assert_same(
    expected: dict[tuple[str, frozenset[tuple[str, str]]], float],
    actual: dict[tuple[str, frozenset[tuple[str, str]]], float],
) -> None:
    assert sorted(actual) == sorted(expected)
    different = {
        k: (expected[k], actual[k])
        for k in expected
        if not math.isclose(expected[k], actual[k], rel_tol=1e-9, abs_tol=0.0)
    }
    assert different == {}


@pytest.fixture
def reference(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    if not STATSD_JS.exists():
        pytest.fail(f"reference statsd missing at {STATSD_JS}: run scripts/setup-peers.sh")
    port, out = free_port(socket.SOCK_DGRAM), tmp_path / "reference.jsonl"
    config = tmp_path / "reference.js"
    config.write_text(
        json.dumps(
            {
                "address": "127.0.0.1",
                "port": port,
                "mgmt_address": "127.0.0.1",
                "mgmt_port": free_port(socket.SOCK_STREAM),
                "flushInterval": INTERVAL_MS,
                "percentThreshold": list(PERCENTILES),
                "backends": [str(BACKEND)],
                "jsonBackend": {"path": str(out)},
            }
        )
    )
    proc = subprocess.Popen(
        ["node", str(STATSD_JS), str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    try:
        yield port, out
    finally:
        stop(proc)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[TelemetryStore]:
    telemetry = TelemetryStore(
        settings=StoreSettings(redis=RedisSettings(url=None, data_dir=tmp_path / "redis"))
    )
    await telemetry.start()
    try:
        yield telemetry
    finally:
        await telemetry.shutdown()


def _flushes(path: Path) -> list[dict[str, dict[str, object]]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


async def _wait_for(predicate: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def send_instant(reference_flush_ms: int, now_ms: int) -> int:
    """The first instant after ``now_ms`` >= 400 ms away from both daemons' flush grids."""

    def clear(t: int, phase: int) -> bool:
        offset = (t - phase) % INTERVAL_MS
        return 400 <= offset <= INTERVAL_MS - 400

    t = now_ms + 100
    while not (clear(t, reference_flush_ms) and clear(t, 0)):
        t += 50
    return t


async def test_flushes_agree_with_reference_daemon(
    reference: tuple[int, Path], store: TelemetryStore
) -> None:
    ref_port, ref_out = reference
    families = ReceiverMetricFamilies.create(CollectorRegistry())
    sinks, receivers = [], []
    for workers in (0, 2):
        sink = RecordingSink(store)
        settings = StatsdSettings(
            udp_listen="127.0.0.1:0",
            tcp_listen="127.0.0.1:0" if workers == 0 else None,
            flush_interval_s=INTERVAL_MS / 1000,
            percentiles=PERCENTILES,
            udp_workers=workers,
        )
        receiver = StatsdReceiver(
            settings=settings,
            sink=sink,
            metrics=ReceiverMetrics(families=families, receiver=f"statsd{workers}"),
            resource={"cluster": "c1", "region": "r1"},
        )
        await receiver.start()
        sinks.append(sink)
        receivers.append(receiver)
    try:
        await _wait_for(lambda: _flushes(ref_out), 10, "the reference's first flush")
        first = int(_flushes(ref_out)[0]["now_ms"])  # type: ignore[call-overload]
        start = send_instant(first, round(time.time() * 1000))
        await asyncio.sleep(max(0.0, start / 1000 - time.time()))
        targets = [("127.0.0.1", ref_port)] + [r.udp_address for r in receivers]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for datagram in DATAGRAMS:
                for target in targets:
                    sender.sendto(datagram, target)
        sent_ms = round(time.time() * 1000)
        assert sent_ms - start < 300, "sending took too long for a clean flush window"

        def ref_done() -> bool:
            return len([f for f in _flushes(ref_out) if int(f["now_ms"]) > start]) >= 2  # type: ignore[call-overload]

        await _wait_for(ref_done, 3 * INTERVAL_MS / 1000 + 2, "two reference flushes")
        await _wait_for(
            lambda: all(
                len([t for t in meshfed_flushes(s.samples) if t > start]) >= 2 for s in sinks
            ),
            3 * INTERVAL_MS / 1000 + 2,
            "two meshfed flushes",
        )
        ref_flushes = [f for f in _flushes(ref_out) if int(f["now_ms"]) > start][:2]  # type: ignore[call-overload]
        assert ref_flushes[0]["counters"]["statsd.bad_lines_seen"] == 9
        for sink in sinks:
            ours = meshfed_flushes(sink.samples)
            times = sorted(t for t in ours if t > start)[:2]
            for ref_flush, t in zip(ref_flushes, times, strict=True):
                assert_same(expected_samples(ref_flush), ours[t])
    finally:
        for receiver in receivers:
            await receiver.shutdown()

    data_time = sorted(t for t in meshfed_flushes(sinks[0].samples) if t > start)[0]
    series = await store.metrics.select(
        [
            LabelMatcher("__name__", MatchType.EQUAL, "stats_timers_app_lat_upper_90"),
            LabelMatcher("cluster", MatchType.EQUAL, "c1"),
        ],
        data_time - 1,
        data_time + 1,
    )
    assert [(dict(s.labels)["region"], list(s.values)) for s in series] == [("r1", [90.0])]


async def test_bad_input_is_counted_and_server_keeps_serving(store: TelemetryStore) -> None:
    sink = RecordingSink(store)
    families = ReceiverMetricFamilies.create(registry := CollectorRegistry())
    receiver = StatsdReceiver(
        settings=StatsdSettings(
            udp_listen="127.0.0.1:0", tcp_listen="127.0.0.1:0", udp_workers=0, flush_interval_s=60
        ),
        sink=sink,
        metrics=ReceiverMetrics(families=families, receiver="statsd"),
    )
    await receiver.start()
    try:
        junk = [
            bytes(range(256)),
            b"\xff\xfe:|||@@@\n" * 50,
            b":" * 1000,
            b"|#" * 500,
            b"_e{9,9}:x|y",
        ]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for datagram in junk:
                sender.sendto(datagram, receiver.udp_address)
            sender.sendto(b"after.junk:1|c", receiver.udp_address)
        host, port = receiver.tcp_address  # type: ignore[misc]
        _reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"tcp.count:2|c\ntcp.count:3|c\nnot a line\ntcp.ti")
        writer.write(b"me:5|ms\n_sc|db.check|2|#env:prod|m:down\n")
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        await _wait_for(
            lambda: receiver._acc.partial.lines >= 8,
            5,
            "the lines to arrive",
        )
    finally:
        await receiver.shutdown()  # the final flush writes what was received
    values = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in sink.samples}
    assert values[("stats_counters_after_junk_count", ())] == 1
    assert values[("stats_counters_tcp_count_count", ())] == 5
    assert values[("stats_timers_tcp_time_upper_90", ())] == 5
    assert values[("stats_counters_statsd_bad_lines_seen_count", ())] > 50
    rejected = registry.get_sample_value(
        "meshfed_receiver_rejected_total", {"receiver": "statsd", "reason": "bad_line"}
    )
    assert rejected == values[("stats_counters_statsd_bad_lines_seen_count", ())]
    now_ns = time.time_ns()
    checks = await store.logs.query(
        LogQuery(now_ns - 60 * 10**9, now_ns, 10, tag="statsd.service_check")
    )
    assert [
        (r.body, r.attributes["check.status"], r.attributes["env"]) for r in checks.records
    ] == [("down", "CRITICAL", "prod")]

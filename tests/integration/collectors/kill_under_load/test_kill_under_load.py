"""Nothing acknowledged is lost when Redis or the collector is SIGKILLed mid-stream.

A real ``meshfed collect`` (embedded Redis, AOF ``appendfsync always``) takes, at the same
time and as fast as it answers: 4 remote_write senders (25 series each, one sample per series
per request), 2 Forward senders (the npm fluent-logger, PackedForward with acks) and 2 OTLP
span exporters (the OpenTelemetry SDK's, one over gRPC, one over HTTP/protobuf). Once every
sender has been acknowledged a while, the case's SIGKILL lands: the embedded Redis, the
collector (its Redis then gets SIGTERM through the parent-death signal), both at once (as
an OOM kill of the whole container would), or both after Redis stalled for 0.5 s (SIGSTOP:
writes hang as on a stuck disk, and a collector that acked before its write returned would
ack what then dies with Redis). The senders keep going through the outage and are then
stopped; the collector is restarted on the same data directory and everything each
sender was told was stored is read back through the query API. One more case kills the
embedded Redis and does not restart the collector: its supervisor must bring Redis back
within ``RECOVERY_S`` (``/-/healthy`` answering 200 throughout), every sender must be
acknowledged again, the same checks must pass, the restart must be counted on
``/metrics``, and after the collector's shutdown no Redis may remain. The checks:

- remote_write: every acknowledged request's sample, in every one of its series, with its
  value (``/api/v1/query``); every stored sample is one that was sent; a timestamp at most
  once per series (the protocol's identity of a sample is series + timestamp).
- Forward: every acknowledged event's body (``/api/logs``), exactly once. Nothing is emitted
  twice by the driver, so a duplicate would be the receiver's; events sent but not acked may
  be missing.
- OTLP: every acknowledged export's trace by id (``/api/traces/<id>``), with exactly its span
  ids, each once (span identity is trace id + span id; the exporter resends a batch whose
  answer it did not get, and the store must absorb that).
- While Redis is down, remote_write answers only 2xx, 429 or 503 (never a code that makes
  Prometheus drop data); after the restart, one more request per sender is stored.

StatsD is not part of this: it has no acknowledgement, so there is nothing to hold it to
(its losses while Redis is down are counted, see ``docs/reliability.md``).
``MESHFED_TEST_KILL_APPENDFSYNC=everysec`` (or ``no``) runs the same cases with another AOF policy.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.collectors.kill_under_load.collector import (
    CollectorProcess,
    kill_redis,
    process_alive,
)
from tests.integration.collectors.kill_under_load.senders import (
    STEP_MS,
    ForwardSender,
    OtlpSender,
    RemoteWriteSender,
    Sender,
    trace_id_of,
)

pytestmark = pytest.mark.timeout(420)

MIN_ACKED = {"remote_write": 20, "forward": 200, "otlp": 10}
"""Acks every sender must have had before the kill (so all are mid-stream at kill time)."""
MIN_STREAM_S = 2.0
"""... and the senders must have streamed this long."""
OUTAGE_S = 1.5
"""How long the senders keep sending into the dead collector or Redis before they stop."""
STALL_S = 0.5
"""How long Redis is SIGSTOPped before the last case kills it and its collector."""
RAMP_TIMEOUT_S = 90.0
RECOVERY_S = 10.0
"""Bound on the time from SIGKILL of the embedded Redis to ``/-/ready`` answering 200 again,
with no restart of the collector (the supervisor checks every 0.2 s and restarts at once;
the rest is loading the AOF under load)."""
MIN_ACKED_AFTER_RECOVERY = {"remote_write": 5, "forward": 60, "otlp": 2}
"""New acks every sender must get once the store is back (their retries succeed)."""


class Senders:
    """The eight senders of one case, started together and stopped together."""

    def __init__(self, collector: CollectorProcess, t0_ms: int) -> None:
        self.collector = collector
        self.rw = [RemoteWriteSender(f"s{i}", collector.url, t0_ms) for i in range(4)]
        self.fwd = [ForwardSender(f"kill.f{i}", collector.forward_port) for i in range(2)]
        self.otlp = [
            OtlpSender.grpc(0, collector.otlp_grpc_port),
            OtlpSender.http(1, collector.otlp_http_port),
        ]
        self.stop = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    def all(self) -> list[Sender]:
        return [*self.rw, *self.fwd, *self.otlp]

    def start(self) -> None:
        for s in self.all():
            self.tasks.append(asyncio.create_task(s.run(self.stop)))

    def ramped_up(self) -> bool:
        return (
            all(len(s.acked) >= MIN_ACKED["remote_write"] for s in self.rw)
            and all(len(s.acked) >= MIN_ACKED["forward"] for s in self.fwd)
            and all(len(s.acked) >= MIN_ACKED["otlp"] for s in self.otlp)
        )

    async def wait_ramped_up(self) -> None:
        started = time.monotonic()
        while not (self.ramped_up() and time.monotonic() - started >= MIN_STREAM_S):
            for t in self.tasks:
                if t.done():
                    t.result()  # a sender that crashed fails the test with its error
                    raise AssertionError("a sender finished before the kill: raise its bound")
            if time.monotonic() - started > RAMP_TIMEOUT_S:
                raise AssertionError(
                    f"senders not acknowledged in {RAMP_TIMEOUT_S} s: {self}; per sender"
                    f" {[len(s.acked) for s in self.all()]};"
                    f" collector log: {self.collector.log_tail()}"
                )
            await asyncio.sleep(0.02)

    async def finish(self) -> None:
        self.stop.set()
        await asyncio.wait_for(asyncio.gather(*self.tasks), timeout=60)

    def __str__(self) -> str:
        rw = sum(len(s.acked) * s.series for s in self.rw)
        fwd = sum(len(s.acked) for s in self.fwd)
        spans = sum(len(s.acked) * s.spans for s in self.otlp)
        return f"acked: {rw} samples, {fwd} Forward events, {spans} spans"


async def _get(client: httpx.AsyncClient, path: str, **params: str) -> Any:
    r = await client.get(path, params=params)
    assert r.status_code in (200, 404), f"{path} {params}: {r.status_code} {r.text[:300]}"
    return r.json() if r.status_code == 200 else None


async def _check_remote_write(client: httpx.AsyncClient, s: RemoteWriteSender) -> int:
    """Asserts the promise for one sender; returns how many unacked requests were stored."""
    body = await _get(
        client, "/api/v1/query", query=f'kill_rw{{sender="{s.name}"}}[6h]', time=str(time.time())
    )
    by_series = {r["metric"]["i"]: r["values"] for r in body["data"]["result"]}
    stored_unacked: set[int] = set()
    for i in range(s.series):
        values = by_series.get(str(i), [])
        stamps = [round(float(ts) * 1000) for ts, _ in values]
        assert len(stamps) == len(set(stamps)), f"{s.name} i={i}: a timestamp twice"
        stored: dict[int, float] = {}
        for ts_ms, (_, v) in zip(stamps, values, strict=True):
            k, rest = divmod(ts_ms - s.t0_ms, STEP_MS)
            assert rest == 0 and 0 <= k < s.sent, f"{s.name} i={i}: never sent at {ts_ms}"
            stored[k] = float(v)
        lost = sorted(k for k in s.acked if k not in stored)
        assert not lost, f"{s.name} i={i}: {len(lost)} acked requests lost, first {lost[:10]}"
        wrong = sorted(k for k, v in stored.items() if v != float(k))
        assert not wrong, f"{s.name} i={i}: wrong values for requests {wrong[:10]}"
        stored_unacked |= set(stored) - s.acked
    return len(stored_unacked)


async def _check_forward(client: httpx.AsyncClient, s: ForwardSender, since: float) -> int:
    """Read back in blocks of 1,000 bodies (``<tag>#NN...``), under the API's 5,000 limit;
    returns how many unacked events were stored."""
    bodies: Counter[str] = Counter()
    for block in range(max(s.emitted, max(s.acked, default=0) + 1) // 1000 + 1):
        body = await _get(
            client,
            "/api/logs",
            contains=f"{s.tag}#{block:02d}",
            start=str(since - 600),
            end=str(time.time() + 60),
            limit="5000",
        )
        assert not body["truncated"], f"{s.tag}: more than 5000 logs in block {block}"
        bodies.update(line["body"] for line in body["logs"] if line["tag"] == f"{s.tag}.e")
    twice = sorted(b for b, n in bodies.items() if n > 1)
    assert not twice, f"{s.tag}: {len(twice)} events stored more than once, e.g. {twice[:5]}"
    lost = sorted(seq for seq in s.acked if bodies[s.body(seq)] == 0)
    assert not lost, f"{s.tag}: {len(lost)} acked events lost, first {lost[:10]}"
    phantom = set(bodies) - {s.body(seq) for seq in range(max(s.emitted, len(bodies)))}
    assert not phantom, f"{s.tag}: stored events never sent: {sorted(phantom)[:5]}"
    return len(bodies) - len(s.acked)


async def _check_otlp(client: httpx.AsyncClient, s: OtlpSender) -> int:
    """Every export's trace by id; returns how many unacked exports were stored."""
    expected = sorted(f"{j:016x}" for j in range(1, s.spans + 1))
    gate = asyncio.Semaphore(8)

    async def spans_of(k: int) -> list[str] | None:
        async with gate:
            body = await _get(client, f"/api/traces/{trace_id_of(s.index, k):032x}")
        if body is None:
            return None
        scopes = [ss for b in body["batches"] for ss in b["scopeSpans"]]
        return sorted(sp["spanId"] for ss in scopes for sp in ss["spans"])

    found = await asyncio.gather(*(spans_of(k) for k in range(s.sent)))
    lost = [k for k in sorted(s.acked) if found[k] is None]
    assert not lost, f"otlp{s.index}: {len(lost)} acked traces lost, first {lost[:10]}"
    for k, spans in enumerate(found):
        if spans is not None and k in s.acked:
            assert spans == expected, f"otlp{s.index} export {k}: spans {spans}"
        elif spans is not None:  # unacked: any subset may be stored, but each span once
            assert len(spans) == len(set(spans)) and set(spans) <= set(expected), spans
    return sum(1 for k, spans in enumerate(found) if spans is not None and k not in s.acked)


async def _restart_and_check(
    collector: CollectorProcess, senders: Senders, victim: str, redis_pid: int, since: float
) -> str:
    """Restart on the same data, send once more, check every sender; returns a summary."""
    if victim == "redis":  # its Redis came back by itself; a restart must find it all too
        await asyncio.to_thread(collector.stop)
    await asyncio.to_thread(collector.wait_redis_gone, redis_pid)
    await asyncio.to_thread(collector.start)
    return await _check_everything(collector, senders, since)


async def _check_everything(collector: CollectorProcess, senders: Senders, since: float) -> str:
    """Send once more, check every sender's promise; returns a summary."""
    load = os.getloadavg()[0]
    async with httpx.AsyncClient(base_url=collector.url, timeout=30) as client:
        for s in senders.rw:  # the senders' next requests are stored again
            await s.post(client, s.sent)
            assert s.sent - 1 in s.acked, f"{s.name} after the outage: {s.answers}"
        for o in senders.otlp:
            await asyncio.to_thread(o.export, o.sent)
            assert o.sent - 1 in o.acked, f"otlp{o.index} after the outage: {o.results}"
        unexpected = {s.name: s.unexpected_answers() for s in senders.rw}
        assert not any(unexpected.values()), f"non-retryable refusals: {unexpected}"
        extra_rw = [await _check_remote_write(client, s) for s in senders.rw]
        extra_fwd = [await _check_forward(client, s, since) for s in senders.fwd]
        extra_otlp = [await _check_otlp(client, s) for s in senders.otlp]
    return (
        f"in total {senders} (load {load:.1f}); stored but not acked: {sum(extra_rw)}"
        f" requests, {sum(extra_fwd)} events, {sum(extra_otlp)} exports; rw answers"
        f" {dict(sum((s.answers for s in senders.rw), Counter()))}, otlp results"
        f" {dict(sum((s.results for s in senders.otlp), Counter()))};"
        f" fluent-logger threw: {[f.crash for f in senders.fwd if f.crash]}"
    )


@pytest.mark.parametrize(
    "victim",
    [
        pytest.param("redis", id="sigkill-embedded-redis"),
        pytest.param("collector", id="sigkill-collector"),
        pytest.param("both", id="sigkill-collector-and-redis"),
        pytest.param("stalled", id="sigkill-collector-and-stalled-redis"),
    ],
)
async def test_acknowledged_telemetry_survives_sigkill_under_load(
    collector: CollectorProcess, victim: str
) -> None:
    since = time.time()
    await asyncio.to_thread(collector.start)
    senders = Senders(collector, t0_ms=(int(since) - 3 * 3600) * 1000)
    senders.start()
    try:
        await senders.wait_ramped_up()
        redis_pid = collector.redis_pid()
        if victim == "stalled":  # writes hang in Redis: nothing may be acked meanwhile
            os.kill(redis_pid, signal.SIGSTOP)
            try:
                await asyncio.sleep(STALL_S)
            finally:  # never leave a stopped Redis behind (SIGTERM waits for SIGCONT)
                kill_redis(redis_pid)
        if victim in ("redis", "both"):
            kill_redis(redis_pid)
        if victim in ("collector", "both", "stalled"):
            collector.kill()
        at_kill = str(senders)
        await asyncio.sleep(OUTAGE_S)
    finally:
        await senders.finish()
    try:
        summary = await _restart_and_check(collector, senders, victim, redis_pid, since)
    finally:
        for o in senders.otlp:
            o.shutdown()
    print(f"\n[{victim}] at kill {at_kill}; {summary}")


async def _wait_recovered(collector: CollectorProcess, dead_pid: int, killed_at: float) -> int:
    """The new Redis's pid, once ``/-/ready`` answers 200 with a new server; ``/-/healthy``
    must answer 200 throughout (the outage is one the process recovers from)."""
    async with httpx.AsyncClient(base_url=collector.url, timeout=5) as client:
        while True:
            healthy = await client.get("/-/healthy")
            assert healthy.status_code == 200, f"/-/healthy while recovering: {healthy.text}"
            ready = await client.get("/-/ready")
            pid = collector.running_redis_pid()
            if ready.status_code == 200 and pid is not None and pid != dead_pid:
                return pid
            assert time.monotonic() - killed_at < RECOVERY_S, (
                f"not back within {RECOVERY_S} s: /-/ready {ready.status_code} {ready.text};"
                f" Redis pid {pid}; collector log: {collector.log_tail()}"
            )
            await asyncio.sleep(0.05)


async def _wait_acked_after(senders: Senders, marks: dict[int, int]) -> None:
    """Until every sender has new acks since ``marks`` (a Forward sender whose logger threw
    has stopped sending, so it is not waited for)."""
    need = [
        *((s, MIN_ACKED_AFTER_RECOVERY["remote_write"]) for s in senders.rw),
        *((s, MIN_ACKED_AFTER_RECOVERY["forward"]) for s in senders.fwd if not s.crash),
        *((s, MIN_ACKED_AFTER_RECOVERY["otlp"]) for s in senders.otlp),
    ]
    deadline = time.monotonic() + RAMP_TIMEOUT_S
    while any(len(s.acked) - marks[id(s)] < n for s, n in need):
        assert time.monotonic() < deadline, (
            f"senders not acknowledged again in {RAMP_TIMEOUT_S} s after Redis came back:"
            f" new acks {[len(s.acked) - marks[id(s)] for s in senders.all()]}"
        )
        for t in senders.tasks:
            if t.done():
                t.result()
        await asyncio.sleep(0.02)


async def _restarts(collector: CollectorProcess) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=collector.url, timeout=10) as client:
        text = (await client.get("/metrics")).text
    return {
        sample.name + str(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        if family.name.startswith("meshfed_store_restart") or family.name.endswith("embedded_up")
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


async def test_the_collector_brings_its_killed_redis_back_by_itself(
    collector: CollectorProcess,
) -> None:
    """SIGKILL of the embedded Redis under load, and no restart of the collector: it must be
    ready again within ``RECOVERY_S`` on a new Redis, ``/-/healthy`` must say 200 throughout,
    every sender must be acknowledged again, nothing acknowledged may be lost, and after its
    shutdown no Redis may remain."""
    since = time.time()
    await asyncio.to_thread(collector.start)
    senders = Senders(collector, t0_ms=(int(since) - 3 * 3600) * 1000)
    senders.start()
    try:
        await senders.wait_ramped_up()
        dead_pid = collector.redis_pid()
        killed_at = time.monotonic()
        kill_redis(dead_pid)
        at_kill = str(senders)
        new_pid = await _wait_recovered(collector, dead_pid, killed_at)
        recovery_s = time.monotonic() - killed_at
        await _wait_acked_after(senders, {id(s): len(s.acked) for s in senders.all()})
    finally:
        await senders.finish()
    try:
        summary = await _check_everything(collector, senders, since)
        metrics = await _restarts(collector)
    finally:
        for o in senders.otlp:
            o.shutdown()
    assert metrics == {
        "meshfed_store_restarts_total[('reason', 'exited')]": 0.0,
        "meshfed_store_restarts_total[('reason', 'hung')]": 0.0,
        "meshfed_store_restarts_total[('reason', 'killed')]": 1.0,
        "meshfed_store_restart_failures_total[]": 0.0,
        "meshfed_store_embedded_up[]": 1.0,
    }, metrics
    assert await asyncio.to_thread(collector.stop) == 0, collector.log_tail()
    assert not process_alive(new_pid), "the restarted Redis outlived its collector's shutdown"
    print(
        f"\n[redis, no collector restart] back in {recovery_s:.2f} s; at kill {at_kill}; {summary}"
    )

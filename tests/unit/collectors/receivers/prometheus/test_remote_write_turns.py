"""Requests that arrive together reach the store one by one, not after every decode.

The receiver decodes on the event loop in turns (``collectors/_kits/loop_turns.py``): the
batch of one request goes to an idle pipeline writer before the next request is decoded, so
the store works while the collector decodes. Seen from the store: with idle writers, three
requests sent at once are three writes. Without turns, the three decodes ran first and the
writer took all three batches as one write, after the last decode. The case without turns
(the receiver's decode step run directly) shows that the store can tell the two apart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

import httpx
import pytest
from starlette.applications import Starlette

from collectors._kits.loop_turns import LoopTurns
from collectors.pipeline.memory import MemoryLimiter, MemorySettings
from collectors.pipeline.normalize import ResourceSettings
from collectors.pipeline.pipeline import BatchSettings, Pipeline, PipelineSettings
from collectors.receivers.prometheus.config import RemoteWriteSettings
from collectors.receivers.prometheus.remote_write import WRITE_PATH, remote_write_routes
from tests.helpers.memsink import MemorySink, receiver_metrics
from tests.helpers.remote_write import HEADERS, proto_write_request, snappy_compress

T = TypeVar("T")
SAMPLES_PER_REQUEST = 5


def _body(request: int) -> bytes:
    series = [
        ([("__name__", "up"), ("job", f"request-{request}"), ("series", str(i))], [(1000, 1.0)])
        for i in range(SAMPLES_PER_REQUEST)
    ]
    return snappy_compress(proto_write_request(series))


async def _untimed(self: LoopTurns, step: Callable[[], T]) -> T:
    return step()


@pytest.mark.parametrize(
    ("turns", "expected_writes"),
    [
        pytest.param(True, [5, 5, 5], id="in-turns-each-request-is-its-own-write"),
        pytest.param(False, [15], id="without-turns-the-store-waits-for-every-decode"),
    ],
)
async def test_requests_sent_together_reach_the_store_one_by_one(
    turns: bool, expected_writes: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    if not turns:
        monkeypatch.setattr(LoopTurns, "run", _untimed)
    sink = MemorySink()
    settings = PipelineSettings(resource=ResourceSettings(cluster="c1"), batch=BatchSettings())
    pipeline = Pipeline(store=sink, settings=settings, metrics=receiver_metrics("pipeline"))
    await pipeline.start()
    routes = remote_write_routes(
        sink=pipeline,
        limiter=MemoryLimiter(settings=MemorySettings(), read_rss=lambda: 0),
        settings=RemoteWriteSettings(),
        metrics=receiver_metrics("remote_write"),
    )
    transport = httpx.ASGITransport(app=Starlette(routes=routes))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://collector") as client:
            answers = await asyncio.gather(
                *(client.post(WRITE_PATH, content=_body(r), headers=HEADERS) for r in range(3))
            )
    finally:
        await pipeline.shutdown()
    assert [a.status_code for a in answers] == [204, 204, 204]
    assert sink.batches == expected_writes
    assert len(sink.samples) == 3 * SAMPLES_PER_REQUEST

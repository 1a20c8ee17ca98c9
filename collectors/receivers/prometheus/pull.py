"""Pull mode: federate selected series from each cluster's Prometheus into the store.

One ``GET /federate?match[]=...`` per target and interval returns the latest sample of
every matching series in the text exposition format (with timestamps); it is parsed with
prometheus_client's parser, the target's ``cluster`` label is added unless present, and
the samples (and TYPE/HELP as metadata) go through the sink. Repeated pulls of an
unchanged sample are the store's ``duplicates_ignored`` no-ops. Failures are counted per
reason and logged once per change of a target's state, not per pull.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

from collectors._core.component import TelemetrySink
from collectors._core.errors import CollectorError, PermanentError, RetryableError
from collectors._core.model import CLUSTER_LABEL, MetricMetadata, MetricType, Sample
from collectors._core.selfmetrics import ReceiverMetrics
from collectors._kits.tasks import cancel_and_wait
from collectors.receivers.prometheus.config import PullSettings, PullTarget

log = logging.getLogger(__name__)

_TYPES = {t.value: t for t in MetricType}


def parse_federation(
    text: str, *, cluster: str, now_ms: int
) -> tuple[list[Sample], list[MetricMetadata]]:
    """Samples and metadata of a ``/federate`` answer, each sample labelled with ``cluster``."""
    samples: list[Sample] = []
    metadata: list[MetricMetadata] = []
    try:
        for family in text_string_to_metric_families(text):
            if family.type in _TYPES or family.documentation:
                kind = _TYPES.get(family.type, MetricType.UNKNOWN)
                metadata.append(MetricMetadata(family.name, kind, family.documentation))
            for s in family.samples:
                labels = dict(s.labels)
                if not labels.get(CLUSTER_LABEL):
                    labels[CLUSTER_LABEL] = cluster
                ts = now_ms if s.timestamp is None else round(float(s.timestamp) * 1000)
                samples.append(Sample(s.name, labels, ts, float(s.value)))
    except ValueError as e:
        raise PermanentError(f"invalid exposition text from /federate: {e}") from e
    return samples, metadata


class PrometheusPullReceiver:
    """A Component: one task per target pulling every ``interval_s``."""

    def __init__(
        self,
        *,
        sink: TelemetrySink,
        metrics: ReceiverMetrics,
        settings: PullSettings,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        settings.validate()
        self._sink = sink
        self._metrics = metrics
        self._settings = settings
        self._transport = transport
        self._clock = clock
        self._tasks: list[asyncio.Task[None]] = []
        self._client: httpx.AsyncClient | None = None
        self._healthy: dict[str, bool] = {}

    async def start(self) -> None:
        if self._tasks or not self._settings.targets:
            return
        self._client = httpx.AsyncClient(transport=self._transport, follow_redirects=False)
        self._tasks = [
            asyncio.create_task(self._loop(t), name=f"pull-{t.cluster}")
            for t in self._settings.targets
        ]
        log.info("pulling from %d Prometheus servers", len(self._tasks))

    async def shutdown(self) -> None:
        """Stop pulling; a pull in progress is abandoned (its samples were not acked)."""
        tasks, self._tasks = self._tasks, []
        try:
            await cancel_and_wait(tasks)
        finally:
            if self._client is not None:
                await self._client.aclose()
                self._client = None

    async def _loop(self, target: PullTarget) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.pull_once(target)
                self._set_state(target, ok=True, detail="")
            except CollectorError as e:
                self._set_state(target, ok=False, detail=str(e))
            elapsed = time.monotonic() - started
            await asyncio.sleep(max(0.0, target.interval_s - elapsed))

    async def pull_once(self, target: PullTarget) -> int:
        """One federation round trip and store write; returns the samples stored."""
        text = await self._fetch(target)
        samples, metadata = parse_federation(
            text, cluster=target.cluster, now_ms=round(self._clock() * 1000)
        )
        self._metrics.received("samples", len(samples))
        started = time.perf_counter()
        try:
            if metadata:
                await self._sink.write_metadata(metadata)
            result = await self._sink.write_samples(samples)
        except RetryableError:
            self._metrics.dropped("store_unavailable", len(samples))
            raise
        self._metrics.observe_batch(time.perf_counter() - started)
        self._metrics.stored("samples", result.accepted + result.duplicates_ignored)
        if result.rejected:
            self._metrics.rejected("out_of_order", result.out_of_order)
            self._metrics.rejected("duplicate_sample", result.duplicate_conflicts)
            self._metrics.rejected("series_limit", result.over_limit)
        return result.accepted

    async def _fetch(self, target: PullTarget) -> str:
        if self._client is None:
            raise RetryableError("the pull receiver is not started")
        headers = {"Accept": "text/plain;version=0.0.4"}
        if target.bearer_token:
            headers["Authorization"] = f"Bearer {target.bearer_token}"
        url = target.url.rstrip("/") + "/federate"
        params = httpx.QueryParams([("match[]", s) for s in target.selectors])
        try:
            async with self._client.stream(
                "GET", url, params=params, headers=headers, timeout=target.timeout_s
            ) as response:
                if response.status_code != 200:
                    self._metrics.rejected(f"http_{response.status_code}")
                    raise RetryableError(f"{url} answered {response.status_code}")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > target.max_response_bytes:
                        self._metrics.rejected("too_large")
                        raise RetryableError(
                            f"{url} answer exceeds {target.max_response_bytes} bytes;"
                            " narrow the selectors or raise max_response_bytes"
                        )
        except httpx.HTTPError as e:
            self._metrics.rejected("unreachable")
            raise RetryableError(f"{url}: {e}") from e
        return body.decode("utf-8", errors="replace")

    def _set_state(self, target: PullTarget, *, ok: bool, detail: str) -> None:
        if self._healthy.get(target.url) == ok:
            return
        self._healthy[target.url] = ok
        if ok:
            log.info("pulling from %s (cluster %s) works", target.url, target.cluster)
        else:
            log.warning("pull from %s (cluster %s) fails: %s", target.url, target.cluster, detail)

"""The east-west gateway prober: is each member's gateway answering? (R4)

Every ``interval`` (3 s) each cluster's gateway - its configured ``eastWestGateway.address``
or the gateway Service's LoadBalancer address from the cache - gets a TCP connect to the
gateway port (15443), plus a TLS handshake when configured. ``failureThreshold`` (3) failures
in a row mark it down, one success up again (``federator.core.probing``). A change flips the
cache's ``gateway_healthy`` (which the views carry into the pure core) and offers every key
that cluster exports, so other clusters' ServiceEntries drop its gateway endpoint within
about ``interval * failureThreshold`` of the failure - except where it is a service's last
endpoint (``federator.core.render``) - and get it back within one interval of recovery.

A probe is the edge's only socket besides the apiserver clients; it never writes anything
and a failure is data, not an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime

from federator.core.config import FederationConfig, GatewayProbeSettings
from federator.core.model import ClusterId
from federator.core.probing import GatewayHealth, after_probe, unprobed
from federator.lifecycle import cancel_and_wait
from federator.metrics import FederatorMetrics
from federator.reactor.cache import ClusterCache
from federator.reactor.sources import KeySink

log = logging.getLogger(__name__)

Probe = Callable[[str, int, float, bool], Awaitable[str | None]]
"""``probe(host, port, timeout, tls)`` -> None if the gateway answered, else the error."""


@functools.cache
def _liveness_context() -> ssl.SSLContext:
    """One client context for every TLS probe, with no CA loaded: nothing is verified, and a
    default context per probe read the system's CA bundle (~0.7 MiB) every 3 s per cluster."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def tcp_probe(host: str, port: int, timeout: float, tls: bool) -> str | None:
    """Connect (and handshake, ``tls``) within ``timeout``; certificates are not verified:
    this is liveness, the mesh's mTLS does the authentication."""
    context = _liveness_context() if tls else None
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=context), timeout=timeout
        )
    except (OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError
        return f"{type(exc).__name__}: {exc}".rstrip(": ")
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return None


class GatewayProber:
    """See the module docstring. ``start()`` returns at once; ``shutdown()`` is idempotent."""

    def __init__(
        self,
        *,
        config: FederationConfig,
        caches: Mapping[ClusterId, ClusterCache],
        sink: KeySink,
        metrics: FederatorMetrics,
        probe: Probe = tcp_probe,
    ) -> None:
        self._config = config
        self.settings: GatewayProbeSettings = config.gateway_probe
        self._caches = caches
        self._sink = sink
        self._metrics = metrics
        self._probe = probe
        self.health: dict[ClusterId, GatewayHealth] = {
            name: GatewayHealth() for name in config.cluster_ids
        }
        """The latest health per cluster (read by the status reporter)."""
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = False

    async def start(self) -> None:
        if self._tasks or self._stopped or not self.settings.enabled:
            return
        if len(self._config.clusters) < 2:
            return  # nobody to reach a gateway from
        self._tasks = [
            asyncio.create_task(self._loop(name), name=f"gateway-probe-{name}")
            for name in self._config.cluster_ids
        ]

    async def shutdown(self) -> None:
        self._stopped = True
        tasks, self._tasks = self._tasks, []
        await cancel_and_wait(tasks)

    async def _loop(self, name: ClusterId) -> None:
        while True:
            try:
                await self.probe_once(name)
            except Exception:  # a bug must not end probing; the gateway stays as it was
                log.exception("cluster %s: probing the gateway failed", name)
            await asyncio.sleep(self.settings.interval_seconds)

    def address(self, name: ClusterId) -> str | None:
        configured = self._config.cluster(name).east_west_gateway.address
        return configured or next(iter(self._caches[name].gateway_addresses()), None)

    async def probe_once(self, name: ClusterId) -> GatewayHealth:
        """Probe ``name``'s gateway once and act on a change; returns the new health."""
        s, before, now = self.settings, self.health[name], datetime.now(UTC)
        host = self.address(name)
        if host is None:
            after = unprobed(before, now=now)
        else:
            error = await self._probe(host, s.port, s.timeout_seconds, s.tls)
            after = after_probe(
                before,
                address=f"{host}:{s.port}",
                error=error,
                threshold=s.failure_threshold,
                now=now,
            )
            if error is not None:
                self._metrics.gateway_probe_failures.labels(cluster=name).inc()
        self.health[name] = after
        self._metrics.gateway_up.labels(cluster=name).set(1 if after.usable else 0)
        if after.usable != before.usable:
            self._changed(name, after)
        return after

    def _changed(self, name: ClusterId, health: GatewayHealth) -> None:
        cache = self._caches[name]
        cache.gateway_healthy = health.usable
        if health.usable:
            log.info("cluster %s: east-west gateway %s answers again", name, health.address)
        else:
            log.warning(
                "cluster %s: east-west gateway %s is down after %d failed probes: %s",
                name,
                health.address,
                health.failures,
                health.error,
            )
        observed = time.monotonic()
        for key in cache.exported_keys():
            self._sink.add(key, observed_at=observed)

"""Credential rotation (R7): re-read every member's kubeconfig, swap in a new client on change.

Sources are polled, each on its own period: kubeconfig Secrets with one ``get`` per Secret
(only in the federator's namespace, which is all the home Role grants; the client's watch is
cluster-wide, so a namespaced watch is not available here), kubeconfig files by mtime and size
first, then by content. A source whose raw bytes hash to the fingerprint in use is left alone
without being parsed: an unchanged Secret or file causes no reconnect. A changed one goes
through exactly the start-up path (label check, ``kubeconfig_safety``, context resolution);
if it resolves to the credentials already in use nothing happens either, otherwise a new
``KubeClient`` is built and handed to ``on_rotate`` (``Federator.replace_client`` swaps it in
and restarts that cluster's watches) and ``credential_reloads_total`` counts it.

A version that cannot be used (unsafe, unlabelled, missing, unreadable) keeps the old client
in use: the old credentials may well still work, and a half-written Secret must not take a
cluster down. It is logged and counted once per distinct version or error, not once per poll.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from federator.core.config import ClusterSettings, FederationConfig
from federator.core.model import ClusterId
from federator.errors import ConfigError
from federator.kube.client import KubeClient, Timeouts
from federator.kube.clusters import (
    LoadedCredentials,
    fingerprint,
    parse_kubeconfig,
    read_file_kubeconfig,
    read_secret_kubeconfig,
    secret_source,
)
from federator.lifecycle import cancel_and_wait
from federator.metrics import FederatorMetrics

log = logging.getLogger(__name__)

Rotate = Callable[[ClusterId, KubeClient], Awaitable[None]]
"""Takes over a new client for a cluster (``Federator.replace_client``)."""


@dataclass(frozen=True, slots=True)
class RotationSettings:
    """How often kubeconfig sources are re-read."""

    secret_poll_seconds: float = 10.0
    """Period of the ``get`` of each kubeconfig Secret (rotation is picked up within this)."""
    file_poll_seconds: float = 5.0
    """Period of the mtime/size check of each kubeconfig file."""


class CredentialsWatcher:
    """See the module docstring. ``start()`` returns at once; ``shutdown()`` is idempotent."""

    def __init__(
        self,
        *,
        config: FederationConfig,
        home: KubeClient | None,
        loaded: Mapping[ClusterId, LoadedCredentials],
        on_rotate: Rotate,
        metrics: FederatorMetrics,
        settings: RotationSettings | None = None,
        timeouts: Timeouts | None = None,
    ) -> None:
        self._config = config
        self._home = home
        self._current = dict(loaded)
        self._on_rotate = on_rotate
        self._metrics = metrics
        self.settings = settings or RotationSettings()
        self._timeouts = timeouts
        self._refused: dict[ClusterId, str] = {}
        self._stat: dict[ClusterId, tuple[int, int]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.polls: dict[ClusterId, int] = dict.fromkeys(config.cluster_ids, 0)
        """Completed checks per cluster (one per period)."""

    async def start(self) -> None:
        if self._tasks:
            return
        secrets = [c for c in self._config.clusters if c.secret is not None and self._home]
        files = [c for c in self._config.clusters if c.kubeconfig is not None]
        for clusters, period in (
            (secrets, self.settings.secret_poll_seconds),
            (files, self.settings.file_poll_seconds),
        ):
            if clusters:
                self._tasks.append(
                    asyncio.create_task(self._loop(clusters, period), name="credentials-watch")
                )

    async def shutdown(self) -> None:
        tasks, self._tasks = self._tasks, []
        await cancel_and_wait(tasks)

    async def _loop(self, clusters: Sequence[ClusterSettings], period: float) -> None:
        while True:
            await asyncio.sleep(period)
            for cluster in clusters:
                try:
                    await self.check(cluster)
                except Exception:  # a bug must not end rotation for every cluster
                    log.exception("cluster %s: checking credentials failed", cluster.name)
                self.polls[cluster.name] += 1

    async def check(self, cluster: ClusterSettings) -> bool:
        """Re-read one cluster's kubeconfig; True if a new client was swapped in."""
        name = cluster.name
        current = self._current[name]
        try:
            raw, context, source = await self._read(cluster)
        except ConfigError as exc:
            self._refuse(name, str(exc), str(exc))
            return False
        if raw is None:
            return False  # file not touched since the last poll
        version = fingerprint(raw, context)
        if version == current.fingerprint:
            self._refused.pop(name, None)
            return False
        if self._refused.get(name) == version:
            return False
        try:
            loaded = parse_kubeconfig(raw, context=context, source=source)
        except ConfigError as exc:
            self._refuse(name, version, f"{exc}; still using the previous credentials")
            return False
        if loaded.credentials == current.credentials:
            self._current[name] = loaded
            return False
        try:
            client = KubeClient(
                cluster=name, credentials=loaded.credentials, timeouts=self._timeouts
            )
        except (OSError, ValueError) as exc:  # ssl.SSLError (bad CA data) is an OSError
            self._refuse(name, version, f"{source}: cannot build a client: {exc}")
            return False
        try:
            await self._on_rotate(name, client)
        except BaseException:
            await client.aclose()
            raise
        self._current[name] = loaded
        self._refused.pop(name, None)
        self._metrics.credential_reloads.labels(cluster=name).inc()
        log.info("cluster %s: %s changed; reconnected with the new credentials", name, source)
        return True

    async def _read(self, cluster: ClusterSettings) -> tuple[bytes | None, str | None, str]:
        """(raw kubeconfig or None if a file is untouched, context, source)."""
        if cluster.kubeconfig is not None:
            path, context = cluster.kubeconfig.path, cluster.kubeconfig.context
            source = f"kubeconfig {path}"
            try:
                st = Path(path).stat()
            except OSError as exc:
                raise ConfigError(f"{source} cannot be read: {exc.strerror}") from exc
            stamp = (st.st_mtime_ns, st.st_size)
            if self._stat.get(cluster.name) == stamp:
                return None, context, source
            raw = read_file_kubeconfig(path)
            self._stat[cluster.name] = stamp
            return raw, context, source
        assert cluster.secret is not None and self._home is not None
        raw = await read_secret_kubeconfig(
            home=self._home,
            namespace=self._config.namespace,
            cluster=cluster.name,
            secret=cluster.secret,
        )
        return raw, None, secret_source(self._config.namespace, cluster.secret)

    def _refuse(self, name: ClusterId, version: str, message: str) -> None:
        if self._refused.get(name) == version:
            return
        self._refused[name] = version
        self._metrics.credential_reload_failures.labels(cluster=name).inc()
        log.warning("cluster %s: new credentials not used: %s", name, message)

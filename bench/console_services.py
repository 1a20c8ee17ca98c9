"""Benchmark: load time of the console's Services page with 3 clusters x N global services.

Not part of CI (the browser test reports the same figure without asserting it). Starts a
sandbox of 3 real apiservers, listeners on the east-west gateway addresses, ``meshfed
federate``, ``meshfed collect`` (embedded Redis) and ``meshfed console``; creates
``--services`` exported selectorless Services with one ready endpoint each (service i in
cluster i mod 3), waits until the federator applied every one everywhere, then loads the
Services page ``--runs`` times in Debian's Chromium (fresh page each time, 1280x800) and
prints the time from navigation start to the matrix rendered with every row, plus the JSON
route's own time and the machine's load average. Everything is stopped at the end.

The same-run peer is what a platform engineer runs without the console to see the same
facts: ``kubectl get serviceentries,destinationrules -A -o json`` in each of the 3 clusters,
one after the other (kubectl's discovery cache warm after the first run), ``--runs`` times;
the bench prints the median of both and their ratio. kubectl only fetches the objects: the
console also joins them with the federator's status and propagation figures and draws them.

    MESHFED_TEST_BASE_PORT=19500 .venv/bin/python bench/console_services.py --base-port 19500

(the gateway listeners take MESHFED_TEST_BASE_PORT + 480).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from meshfed.sandbox.layout import Topology  # noqa: E402
from meshfed.sandbox.manager import Sandbox  # noqa: E402
from tests.helpers.federator_harness import kubectl, wait_for  # noqa: E402
from tests.integration.console import browser, scale, world  # noqa: E402

NAMESPACE = "console-bench"


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f} (5 min {five:.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=300)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--base-port", type=int, default=19500)
    parser.add_argument("--dir", type=Path, default=None, help="work directory (default: temp)")
    args = parser.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="console-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    sandbox = Sandbox(work / "sandbox")
    started: list[world.Proc] = []
    clusters = ["c1", "c2", "c3"]
    print(f"machine before: {load()}", flush=True)
    try:
        sandbox.up(clusters=3, topology=Topology.GATEWAY, base_port=args.base_port)
        with world.gateways():
            federator = world.start_federator(sandbox.directory, sandbox.kubeconfig, work)
            started.append(federator.proc)
            collector = world.start_collector(work)
            started.append(collector.proc)
            console, url = world.start_console(federator, collector, work)
            started.append(console)
            t0 = time.monotonic()
            scale.create_scale_services(sandbox.kubeconfig, NAMESPACE, args.services, clusters)
            wait_for(
                "every service federated",
                lambda: scale.listed_count(federator.grpc, NAMESPACE) == args.services,
                timeout=600,
                interval=2,
            )
            print(f"{args.services} services federated in {time.monotonic() - t0:.1f} s")
            api = []
            for _ in range(args.runs):
                start = time.perf_counter()
                rows = len(httpx.get(f"{url}/api/services", timeout=60).json()["services"])
                api.append((time.perf_counter() - start) * 1000)
            with browser.browser() as chromium:
                page = scale.services_page_load_ms(chromium, url, args.services, runs=args.runs)
            print(
                f"/api/services ({rows} rows x 3 clusters): median {statistics.median(api):.0f}"
                f" ms, runs {', '.join(f'{t:.0f}' for t in api)}"
            )
            print(
                f"Services page load in Chromium: median "
                f"{statistics.median(t for t, _ in page):.0f} ms, runs "
                f"{', '.join(f'{t:.0f} (fetch {f:.0f})' for t, f in page)}"
            )
            cli = []
            for _ in range(args.runs + 1):  # the first run fills kubectl's discovery cache
                start = time.perf_counter()
                for cluster in clusters:
                    kinds = "serviceentries,destinationrules"
                    out = kubectl(sandbox.kubeconfig, cluster, "get", kinds, "-A", "-o", "json")
                    assert out.stdout.startswith("{"), out.stderr
                cli.append((time.perf_counter() - start) * 1000)
            cli = cli[1:]
            page_median = statistics.median(t for t, _ in page)
            print(
                f"peer, kubectl get serviceentries,destinationrules -A in 3 clusters: median "
                f"{statistics.median(cli):.0f} ms, runs {', '.join(f'{t:.0f}' for t in cli)}; "
                f"page load / kubectl: {page_median / statistics.median(cli):.2f}x"
            )
            print(f"machine after: {load()}")
    finally:
        for proc in reversed(started):
            proc.stop()
        sandbox.down()


if __name__ == "__main__":
    main()

"""R6: ``meshfed federate`` SIGKILLed at random moments while services are added, removed and
scaled; after every restart the federation converges (desired == actual, no orphans).

Seeded: ``MESHFED_R6_SEED`` (default 6) fixes the changes and the kill delays, so a failure
replays. ``MESHFED_R6_KILLS`` sets the number of kills: 30 in CI (a few minutes); the long
run is ``MESHFED_R6_KILLS=100`` (its last result is in docs/reliability.md). The oracle is
the federator's own dry run, in-process: ``plan_all`` over a fresh snapshot of every cluster
must have nothing to create, update or delete - a leftover object carrying meshfed's labels
would be a delete.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from pathlib import Path
from typing import Any

import yaml

from federator.core.config import FederationConfig
from federator.core.config_parse import load_config
from federator.kube.clusters import ClusterRegistry
from federator.reactor.world import snapshot
from federator.reconcile.reconciler import plan_all
from tests.helpers.federator_harness import (
    app_docs,
    apply,
    kubectl,
    pod_ips,
    probing_test_gateways,
    wait_for,
)
from tests.helpers.federator_processes import FederatorProcess
from tests.helpers.gateways import TEST_GATEWAY_PORT
from tests.helpers.sandbox import RunningSandbox

KILLS = int(os.environ.get("MESHFED_R6_KILLS", "30"))
SEED = int(os.environ.get("MESHFED_R6_SEED", "6"))
CONTEXTS = ("c1", "c2", "c3")
NAMES = tuple(f"r6-{i}" for i in range(5))


def _pending(config: FederationConfig) -> str:
    """What a reconcile would still change, as plan text; empty when converged."""

    async def plan() -> str:
        registry = ClusterRegistry(config)
        await registry.open()
        try:
            world, errors = await snapshot(config, registry.clients)
            result = await plan_all(config=config, world=world, clients=registry.clients)
        finally:
            await registry.aclose()
        if errors:
            return f"unreachable: {errors}"
        return "" if result.is_noop else result.render_text()

    return asyncio.run(plan())


def _change(kc: Path, rng: random.Random, exported: dict[tuple[str, str], int]) -> str:
    """One random add / remove / scale of a service in a cluster; updates ``exported``."""
    name, context = rng.choice(NAMES), rng.choice(CONTEXTS)
    replicas = exported.get((name, context))
    if replicas is None:
        replicas = rng.randint(1, 2)
        apply(kc, context, app_docs(name, replicas=replicas))
        exported[(name, context)] = replicas
        return f"add {name} in {context} ({replicas})"
    if rng.random() < 0.5:
        kubectl(kc, context, "delete", "deployment,service", name, "--wait=false")
        del exported[(name, context)]
        return f"remove {name} from {context}"
    replicas = 3 - replicas
    kubectl(kc, context, "scale", "deployment", name, f"--replicas={replicas}")
    exported[(name, context)] = replicas
    return f"scale {name} in {context} to {replicas}"


def _cleanup(kc: Path) -> None:
    for context in CONTEXTS:
        kubectl(kc, context, "delete", "deployment,service", *NAMES, "--ignore-not-found",
                "--wait=false", check=False)  # fmt: skip


def test_sigkill_at_random_points_always_converges(sandbox: RunningSandbox, tmp_path: Path) -> None:
    kc, rng = sandbox.kubeconfig, random.Random(SEED)
    doc: dict[str, Any] = yaml.safe_load((sandbox.directory / "federation.yaml").read_text())
    doc["gatewayProbe"] = {"port": TEST_GATEWAY_PORT}
    config = probing_test_gateways(load_config(sandbox.directory / "federation.yaml"))
    exported: dict[tuple[str, str], int] = {}
    proc = FederatorProcess(sandbox, doc, tmp_path / "run-0")
    slowest = 0.0
    try:
        for kill in range(1, KILLS + 1):
            what = _change(kc, rng, exported)
            name, context = what.split()[1], what.split()[3]
            count = exported.get((name, context), 0)
            wait_for(  # the world settles: the kill lands while the federator follows it
                f"{count} pods of {name} in {context}",
                lambda: len(pod_ips(kc, context, name)) == count,  # noqa: B023
                timeout=30,
            )
            time.sleep(rng.uniform(0.0, 1.2))  # the kill lands mid-reconcile, or just after
            proc.kill()
            restarted = time.monotonic()
            proc = FederatorProcess(sandbox, doc, tmp_path / f"run-{kill}")
            wait_for(
                f"convergence after kill {kill} (seed {SEED}, last change: {what})",
                lambda: not _pending(config),
                timeout=60,
                interval=0.5,
            )
            slowest = max(slowest, time.monotonic() - restarted)
        print(
            f"R6: {KILLS} kills (seed {SEED}); slowest convergence after a restart {slowest:.1f} s"
        )
    finally:
        _cleanup(kc)
        wait_for("cleaned up", lambda: not _pending(config), timeout=60, interval=1)
        proc.stop()

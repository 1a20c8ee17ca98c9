"""``meshfed federate | plan | clusters``: thin commands (parse, call, print).

Exit codes: 0 success (``plan``: no changes), 1 bad configuration or unsafe kubeconfig (one
line on stderr naming the field and the fix), 2 ``plan`` has changes pending.
``federate`` runs until SIGINT/SIGTERM, serving /metrics, /healthz and /readyz on
``listen.http``, and picks up rotated member credentials (Secrets and files) without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from federator.api.server import serve_api
from federator.core.config import FederationConfig, load_config
from federator.core.model import ClusterId
from federator.errors import ConfigError, PermanentError
from federator.health import HealthServer
from federator.kube.client import KubeClient
from federator.kube.clusters import (
    Connections,
    file_credentials,
    in_cluster_credentials,
    open_clusters,
)
from federator.kube.credentials_watch import CredentialsWatcher
from federator.metrics import FederatorMetrics
from federator.reactor.runner import Runner
from federator.reactor.world import snapshot
from federator.reconcile.reconciler import list_owned, plan_all
from federator.status import StatusRegistry

T = TypeVar("T")
ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="federation.yaml")]
HomeOpt = Annotated[
    Path | None,
    typer.Option(help="Kubeconfig of the federator's home cluster (Secrets); default in-cluster"),
]
HomeCtxOpt = Annotated[str | None, typer.Option(help="Context in --home-kubeconfig")]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def _load(path: Path) -> FederationConfig:
    try:
        return load_config(path)
    except (ConfigError, PermanentError) as exc:
        raise _fail(str(exc)) from None


async def _connect(
    config: FederationConfig, home_kubeconfig: Path | None, home_context: str | None
) -> tuple[Connections, KubeClient | None]:
    home = None
    if any(c.secret is not None for c in config.clusters):
        creds = (
            file_credentials(str(home_kubeconfig), home_context)
            if home_kubeconfig is not None
            else in_cluster_credentials()
        )
        home = KubeClient(cluster=ClusterId("home"), credentials=creds)
    try:
        return await open_clusters(config, home=home), home
    except BaseException:
        if home is not None:
            await home.aclose()
        raise


def _run(
    config: FederationConfig,
    home_kubeconfig: Path | None,
    home_context: str | None,
    body: Callable[[Connections, KubeClient | None], Awaitable[T]],
) -> T:
    async def main() -> T:
        conns, home = await _connect(config, home_kubeconfig, home_context)
        try:
            return await body(conns, home)
        finally:  # conns.clients holds the current clients (the runner swaps them in place)
            for client in [*conns.clients.values(), *([home] if home else [])]:
                await client.aclose()

    try:
        return asyncio.run(main())
    except (ConfigError, PermanentError) as exc:
        raise _fail(str(exc)) from None


def federate(
    config: ConfigOpt,
    home_kubeconfig: HomeOpt = None,
    home_context: HomeCtxOpt = None,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING")] = "INFO",
) -> None:
    """Run the federator until SIGINT/SIGTERM (long-running)."""
    logging.basicConfig(
        level=log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    cfg = _load(config)

    async def body(conns: Connections, home: KubeClient | None) -> None:
        clients = conns.clients
        metrics = FederatorMetrics()
        status = StatusRegistry(clusters=cfg.cluster_ids)
        runner = Runner(config=cfg, clients=clients, metrics=metrics, status=status)
        rotation = CredentialsWatcher(
            config=cfg,
            home=home,
            loaded=conns.loaded,
            on_rotate=runner.replace_client,
            metrics=metrics,
        )
        host, _, port = cfg.listen.http.rpartition(":")
        server = HealthServer(host=host.strip("[]"), port=int(port), metrics=metrics, status=status)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await server.start()
        api = await serve_api(status=status, settings=cfg)
        await runner.start()
        await rotation.start()
        logging.getLogger(__name__).info(
            "federating %d clusters; http on %s, gRPC on %s",
            len(clients),
            cfg.listen.http,
            cfg.listen.grpc,
        )
        try:
            await stop.wait()
        finally:
            await rotation.shutdown()
            await runner.shutdown()
            await api.shutdown()
            await server.shutdown()

    _run(cfg, home_kubeconfig, home_context, body)


def plan(
    config: ConfigOpt,
    home_kubeconfig: HomeOpt = None,
    home_context: HomeCtxOpt = None,
) -> None:
    """Dry run: what would be created/updated/deleted per cluster. Exit 2 if anything."""
    cfg = _load(config)

    async def body(
        conns: Connections, _home: KubeClient | None
    ) -> tuple[str, bool, dict[ClusterId, str]]:
        clients = conns.clients
        world, errors = await snapshot(cfg, clients)
        result = await plan_all(config=cfg, world=world, clients=clients)
        return result.render_text(), result.is_noop, errors

    text, noop, errors = _run(cfg, home_kubeconfig, home_context, body)
    for name, error in sorted(errors.items()):
        typer.echo(
            f"warning: cluster {name} is unreachable, not planned, and nothing it exported "
            f"would be pruned: {error}",
            err=True,
        )
    typer.echo(text, nl=False)
    raise typer.Exit(0 if noop else 2)


def clusters(
    config: ConfigOpt,
    home_kubeconfig: HomeOpt = None,
    home_context: HomeCtxOpt = None,
) -> None:
    """Member clusters: reachable, synced, exported and imported services."""
    cfg = _load(config)

    async def body(conns: Connections, _home: KubeClient | None) -> list[tuple[str, ...]]:
        clients = conns.clients
        world, errors = await snapshot(cfg, clients)
        rows: list[tuple[str, ...]] = []
        for name, cache in world.caches.items():
            imported: int | str = "-"
            if name not in errors:
                with contextlib.suppress(Exception):
                    owned = await list_owned(clients[name])
                    imported = sum(1 for o in owned if o.get("kind") == "ServiceEntry")
            rows.append(
                (
                    name,
                    "yes" if name not in errors else "no",
                    "yes" if cache.synced else "no",
                    str(len(cache.exported_keys())) if name not in errors else "-",
                    str(imported),
                    errors.get(name, "")[:80],
                )
            )
        return rows

    rows = _run(cfg, home_kubeconfig, home_context, body)
    table = Table(title="meshfed clusters")
    for column in ("cluster", "reachable", "synced", "exported", "imported", "error"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    Console(width=160).print(table)

"""``meshfed federate | plan | clusters``: thin commands (parse, call, print).

Exit codes: 0 success (``plan``: no changes), 1 bad configuration or unsafe kubeconfig (one
line on stderr naming the field and the fix), 2 ``plan`` has changes pending.
``federate`` checks the configuration, then hands over (exec) to ``python -m federator``
(``federator.serve``), which runs a ``Federator`` until SIGINT/SIGTERM: it serves /metrics,
/healthz and /readyz on ``listen.http`` and the status API on ``listen.grpc``,
and picks up rotated member credentials (Secrets and files) without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from federator.core.config import FederationConfig
from federator.core.config_parse import load_config
from federator.core.model import ClusterId
from federator.core.render_policy import is_global_service_entry
from federator.errors import ConfigError, PermanentError
from federator.kube.clusters import ClusterRegistry
from federator.reactor.world import snapshot
from federator.reconcile.reconciler import list_owned, plan_all
from federator.serve import LOG_LEVELS, command_line, home_credentials

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


def _main(main: Coroutine[object, object, T]) -> T:
    """Run ``main`` on a new event loop; a configuration problem exits 1 with one line."""
    try:
        return asyncio.run(main)
    except (ConfigError, PermanentError) as exc:
        raise _fail(str(exc)) from None


def _run(
    config: FederationConfig,
    home_kubeconfig: Path | None,
    home_context: str | None,
    body: Callable[[ClusterRegistry], Awaitable[T]],
) -> T:
    """``body`` with a client per member cluster (one-shot commands), closed afterwards."""

    async def main() -> T:
        registry = ClusterRegistry(
            config, home=home_credentials(config, home_kubeconfig, home_context)
        )
        await registry.open()
        try:
            return await body(registry)
        finally:
            await registry.aclose()

    return _main(main())


def federate(
    config: ConfigOpt,
    home_kubeconfig: HomeOpt = None,
    home_context: HomeCtxOpt = None,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING")] = "INFO",
) -> None:
    """Run the federator until SIGINT/SIGTERM (long-running)."""
    if log_level.upper() not in LOG_LEVELS:
        raise _fail(f"--log-level {log_level!r} is not one of {', '.join(LOG_LEVELS)}")
    _load(config)  # a bad configuration is reported here, before the hand-over
    # The long-running process is ``python -m federator`` (same PID): it holds none of this
    # CLI's libraries (federator.serve says why).
    argv = command_line(config, home_kubeconfig, home_context, log_level.upper())
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], argv)  # noqa: S606 - the argv is ours, no shell involved


def plan(
    config: ConfigOpt,
    home_kubeconfig: HomeOpt = None,
    home_context: HomeCtxOpt = None,
) -> None:
    """Dry run: what would be created/updated/deleted per cluster. Exit 2 if anything."""
    cfg = _load(config)

    async def body(registry: ClusterRegistry) -> tuple[str, bool, dict[ClusterId, str]]:
        clients = registry.clients
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

    async def body(registry: ClusterRegistry) -> list[tuple[str, ...]]:
        clients = registry.clients
        world, errors = await snapshot(cfg, clients)
        rows: list[tuple[str, ...]] = []
        for name, cache in world.caches.items():
            imported: int | str = "-"
            if name not in errors:
                with contextlib.suppress(Exception):
                    owned = await list_owned(clients[name])
                    imported = sum(1 for o in owned if is_global_service_entry(o))
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

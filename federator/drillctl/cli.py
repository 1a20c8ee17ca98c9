"""``meshfed drill plan|run|status|halt|freeze|unfreeze|report``: thin commands.

Home-cluster access is the federator's: ``--home-kubeconfig``/``--home-context`` or, inside a
Pod, the service account. Drills live where the controller looks for them: ``--namespace``,
else the config's ``drills.namespace``, else its ``namespace`` (``meshfed-system``). The store
(``--store``, ``$MESHFED_STORE_URL`` or the config's ``drills.queryUrl``) is needed only for
reports' golden signals and for evaluating ``preconditions`` at plan time.

Exit codes (``federator.drillctl.view``): 0 confirmed / done, 1 refused, 2 bad spec or bad
arguments, 3 refuted, 4 inconclusive (halt, freeze, TTL, error), 5 rollback not verified,
6 ``--timeout`` while following.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live

from federator.core.config import FederationConfig
from federator.core.drills.journal import verdict
from federator.core.drills.spec import DrillSpec
from federator.core.drills.summary import ReadDrill, read_drill
from federator.drillctl import home as homeops
from federator.drillctl.access import (
    config_of,
    fail,
    home_credentials,
    namespace_of,
    read_spec,
    store_client,
    with_home,
)
from federator.drillctl.collect import collect
from federator.drillctl.options import (
    ConfigOpt,
    FileOpt,
    Home,
    HomeCtxOpt,
    HomeOpt,
    NamespaceOpt,
    StoreOpt,
    home_command,
)
from federator.drillctl.planning import check_drill
from federator.drillctl.report import Report, build_report, event_text, ts
from federator.drillctl.report_html import to_html
from federator.drillctl.report_text import to_json, to_markdown
from federator.drillctl.store import StoreClient
from federator.drillctl.view import (
    EXIT_BAD_SPEC,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_TIMEOUT,
    drill_view,
    drills_table,
    exit_code,
)
from federator.errors import RetryableError
from federator.kube.client import KubeClient
from federator.kube.clusters import ClusterRegistry

app = typer.Typer(
    help="Failover drills: plan, run and follow, halt, freeze, and report.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _check(  # noqa: PLR0917 - plan and run only
    spec: DrillSpec,
    config: FederationConfig,
    home_kubeconfig: Path | None,
    home_context: str | None,
    namespace: str,
    store: StoreClient | None,
) -> int:
    """Print the plan; the exit code it implies (0 may run, 1 refused, 2 bad spec)."""
    credentials = home_credentials(home_kubeconfig, home_context)

    async def body(home: KubeClient) -> int:
        # Members whose kubeconfig is a Secret are read from the home cluster, as federate does.
        registry = ClusterRegistry(config, home=credentials)
        await registry.open()
        try:
            result = await check_drill(
                spec,
                config=config,
                clients=registry.clients,
                home=home,
                namespace=namespace,
                store=store,
            )
        finally:
            await registry.aclose()
        typer.echo(result.render_text(), nl=False)
        if result.spec_errors:
            return EXIT_BAD_SPEC
        return EXIT_REFUSED if result.refusals else EXIT_OK

    try:
        return with_home(home_kubeconfig, home_context, body)
    finally:
        if store is not None:
            store.close()


@app.command()
def plan(  # noqa: PLR0917 - typer maps parameters to options
    file: FileOpt,
    config: ConfigOpt = None,
    home_kubeconfig: HomeOpt = None,
    home_context: HomeCtxOpt = None,
    namespace: NamespaceOpt = None,
    store: StoreOpt = None,
) -> None:
    """Per cluster: the drill's objects and endpoints before/during; refusals (exit 1)."""
    _, spec = read_spec(file)
    cfg = config_of(config, required=True)
    assert cfg is not None
    raise typer.Exit(
        _check(
            spec,
            cfg,
            home_kubeconfig,
            home_context,
            namespace_of(cfg, namespace),
            store_client(store, cfg),
        )
    )


@app.command()
def run(  # noqa: PLR0917
    file: FileOpt,
    config: ConfigOpt = None,
    home_kubeconfig: HomeOpt = None,
    home_context: HomeCtxOpt = None,
    namespace: NamespaceOpt = None,
    store: StoreOpt = None,
    follow: Annotated[
        bool, typer.Option("--follow/--no-follow", help="Follow the drill until it ends.")
    ] = True,
    timeout: Annotated[
        float, typer.Option(help="Stop following after this many seconds (0: the ttl + 5m).")
    ] = 0.0,
    interval: Annotated[float, typer.Option(help="Seconds between status reads.")] = 0.5,
) -> None:
    """Check the drill like plan, create it in the home cluster, follow it to its verdict."""
    document, spec = read_spec(file)
    cfg = config_of(config, required=True)
    assert cfg is not None
    ns = namespace_of(cfg, namespace)
    code = _check(spec, cfg, home_kubeconfig, home_context, ns, store_client(store, cfg))
    if code != EXIT_OK:
        typer.echo("not created", err=True)
        raise typer.Exit(code)

    async def create(home: KubeClient) -> None:
        await homeops.create_drill(home, document, ns)

    with_home(home_kubeconfig, home_context, create)
    typer.echo(f"drill {ns}/{spec.name} created")
    if not follow:
        raise typer.Exit(EXIT_OK)
    limit = timeout or spec.ttl_seconds + 300
    raise typer.Exit(_follow(home_kubeconfig, home_context, ns, spec.name, limit, interval))


def _follow(  # noqa: PLR0917 - one call site
    home_kubeconfig: Path | None,
    home_context: str | None,
    namespace: str,
    name: str,
    limit: float,
    interval: float,
) -> int:
    """A live view on a terminal; elsewhere (a CI log, a pipe) a live view would show only
    its last frame, so each new journal event is printed as a line, then the final view."""
    console = Console()
    lines = not console.is_terminal
    shown = 0

    def new_events(read: ReadDrill) -> None:
        nonlocal shown
        j = read.journal
        if j is None:
            return
        for e in j.events[shown:]:  # the events only grow (evaluations are kept apart)
            console.print(f"{ts(e.at)} {event_text(e, read.spec)[0]}", markup=False)
        shown = len(j.events)

    async def body(home: KubeClient) -> int:
        deadline = time.monotonic() + limit
        live = None if lines else Live(console=console, refresh_per_second=4, transient=False)
        with live or contextlib.nullcontext():
            while True:
                try:
                    read = read_drill(await homeops.get_drill(home, namespace, name))
                except RetryableError as exc:  # the apiserver hiccups; the drill goes on
                    console.print(f"[yellow]cannot read the drill now, retrying:[/] {exc}")
                    await asyncio.sleep(max(interval, 1.0))
                    continue
                if live is not None:
                    live.update(drill_view(read))
                else:
                    new_events(read)
                j = read.journal
                if j is not None and j.terminal:
                    if live is None:
                        console.print(drill_view(read))
                    return exit_code(j.phase.value, verdict(j).value)
                if time.monotonic() > deadline:
                    console.print(f"still running after {limit:.0f}s; it goes on without us")
                    return EXIT_TIMEOUT
                await asyncio.sleep(interval)

    try:
        return with_home(home_kubeconfig, home_context, body)
    except KeyboardInterrupt:
        console.print(f"stopped following; the drill goes on (meshfed drill halt {name} stops it)")
        return EXIT_TIMEOUT


@app.command()
def status(  # noqa: PLR0917 - typer maps parameters to options
    name: Annotated[str | None, typer.Argument(help="One drill: its journal")] = None,
    config: ConfigOpt = None,
    home_kubeconfig: HomeOpt = None,
    home_context: HomeCtxOpt = None,
    namespace: NamespaceOpt = None,
    all_namespaces: Annotated[bool, typer.Option("--all-namespaces", "-A")] = False,
) -> None:
    """Table of drills (phase, step, verdict, age), or one drill's journal."""
    ns = namespace_of(config_of(config), namespace)
    console = Console(width=160)

    async def body(home: KubeClient) -> None:
        if name is None:
            objs = await homeops.list_drills(home, None if all_namespaces else ns)
            if objs:
                console.print(drills_table(objs))
            else:
                console.print(f"no drills in {'any namespace' if all_namespaces else ns}")
            frozen = await homeops.frozen(home, ns)
            if frozen is not None:
                console.print(_frozen_line(frozen))
            return
        console.print(drill_view(read_drill(await homeops.get_drill(home, ns, name)), events=200))

    with_home(home_kubeconfig, home_context, body)


def _frozen_line(obj: dict[str, Any]) -> str:
    data = obj.get("data") or {}
    return (
        f"[bold red]drills are FROZEN[/] since {data.get('frozenAt', '?')} by "
        f"{data.get('frozenBy', '?')}: {data.get('reason', '')}"
    )


@app.command()
@home_command
def halt(
    name: Annotated[str, typer.Argument(help="The drill to stop (it rolls back)")],
    *,
    home: Home,
) -> None:
    """Stop one drill now: sets spec.halt, the controller rolls back and verifies."""

    async def body(client: KubeClient) -> None:
        await homeops.halt_drill(client, home.namespace, name)

    home.run(body)
    typer.echo(f"drill {home.namespace}/{name}: halt requested (see meshfed drill status {name})")


@app.command()
@home_command
def freeze(
    reason: Annotated[str, typer.Option(help="Why (shown by status and in refusals)")],
    *,
    home: Home,
) -> None:
    """Kill switch: halt every running drill and refuse new ones until unfreeze."""
    if not reason.strip():
        raise fail("--reason must say why drills are frozen", 2)

    async def body(client: KubeClient) -> None:
        await homeops.freeze(client, home.namespace, reason.strip(), now=datetime.now(UTC))

    home.run(body)
    typer.echo(f"drills frozen in {home.namespace} ({homeops.FREEZE_CONFIGMAP}): {reason.strip()}")


@app.command()
@home_command
def unfreeze(*, home: Home) -> None:
    """Lift the freeze: drills may start again."""

    async def body(client: KubeClient) -> bool:
        return await homeops.unfreeze(client, home.namespace)

    if home.run(body):
        typer.echo(f"drills unfrozen in {home.namespace}")
    else:
        typer.echo(f"drills were not frozen in {home.namespace}")


@app.command()
def report(  # noqa: PLR0917
    name: Annotated[str, typer.Argument(help="The drill")],
    format: Annotated[str, typer.Option("--format", help="json, md or html")] = "html",
    out: Annotated[Path | None, typer.Option(help="Write here (default: stdout)")] = None,
    config: ConfigOpt = None,
    home_kubeconfig: HomeOpt = None,
    home_context: HomeCtxOpt = None,
    namespace: NamespaceOpt = None,
    store: StoreOpt = None,
) -> None:
    """The drill's report (every run, aborted ones too): timeline, signals, verdict."""
    renderers: dict[str, Callable[[Report], str]] = {
        "json": lambda r: json.dumps(to_json(r), indent=2) + "\n",
        "md": to_markdown,
        "html": to_html,
    }
    if format not in renderers:
        raise fail(f"--format must be one of json, md, html (not {format!r})", 2)
    cfg = config_of(config)
    ns = namespace_of(cfg, namespace)

    async def body(home: KubeClient) -> dict[str, Any]:
        return await homeops.get_drill(home, ns, name)

    obj = with_home(home_kubeconfig, home_context, body)
    read = read_drill(obj)
    now = time.time()
    client = store_client(store, cfg)
    try:
        telemetry = collect(store=client, spec=read.spec, journal=read.journal, now=now)
    finally:
        if client is not None:
            client.close()
    rendered = renderers[format](
        build_report(
            obj=obj,
            spec=read.spec,
            journal=read.journal,
            telemetry=telemetry,
            now=now,
            read_errors=read.errors,
        )
    )
    if out is None:
        typer.echo(rendered, nl=False)
    else:
        out.write_text(rendered)
        typer.echo(f"wrote {out} ({len(rendered)} bytes)", err=True)

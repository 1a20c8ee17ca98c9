"""``meshfed sandbox``: thin CLI over :class:`meshfed.sandbox.manager.Sandbox`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from meshfed.sandbox.layout import DEFAULT_BASE_PORT, Topology
from meshfed.sandbox.manager import Sandbox, SandboxError, steps_for

app = typer.Typer(
    help="A local multi-cluster sandbox of real Kubernetes API servers.", no_args_is_help=True
)
console = Console(stderr=True)

DirOption = Annotated[Path, typer.Option("--dir", help="Where the sandbox keeps its state.")]


@app.command()
def up(
    clusters: Annotated[int, typer.Option("--clusters", "-n", help="How many clusters.")] = 3,
    topology: Annotated[
        Topology, typer.Option(help="How clusters reach each other.")
    ] = Topology.GATEWAY,
    directory: DirOption = Path(".sandbox"),
    base_port: Annotated[
        int | None, typer.Option(help=f"First port used (default {DEFAULT_BASE_PORT}).")
    ] = None,
    istio: Annotated[
        bool,
        typer.Option(
            "--istio",
            envvar="MESHFED_SANDBOX_ISTIO",
            help="Also run a real istiod per cluster (built by `make setup`; docs/istio.md).",
        ),
    ] = False,
) -> None:
    """Start (or repair) N clusters: etcd, kube-apiserver, controller-manager, scheduler, kwok
    (and istiod with --istio)."""
    sandbox = Sandbox(directory)
    started = time.monotonic()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task("sandbox up", total=steps_for(clusters, istio=istio))

        def report(what: str, steps: int) -> None:
            bar.update(task, advance=steps, description=f"sandbox up: {what}")

        try:
            layout = sandbox.up(
                clusters=clusters,
                topology=topology,
                base_port=base_port,
                istio=istio,
                progress=report,
            )
        except (SandboxError, ValueError) as err:
            bar.stop()
            console.print(f"[red]error:[/red] {err}")
            raise typer.Exit(1) from err
    console.print(
        f"[green]{len(layout.clusters)} clusters up[/green] in {time.monotonic() - started:.1f}s "
        f"({layout.topology.value} topology{', istiod per cluster' if layout.istio else ''})\n"
        f"  kubectl --kubeconfig {sandbox.kubeconfig} --context {layout.clusters[0].name} get ns\n"
        f"  federation config: {sandbox.federation_config}"
    )


def _yes(ok: bool) -> str:
    return "[green]yes[/]" if ok else "[red]no[/]"


@app.command()
def status(
    directory: DirOption = Path(".sandbox"),
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print {directory, clusters: [{name, server, istiod: {xds}...}]}."
        ),
    ] = False,
) -> None:
    """Show every cluster: processes, readiness, memory (and istiod's, with Istio)."""
    rows = Sandbox(directory).status()
    if not rows:
        console.print(
            f"no sandbox in {directory}; start one with `meshfed sandbox up --dir {directory}`"
        )
        raise typer.Exit(1)
    healthy = all(r.healthy for r in rows)
    if as_json:
        doc = {
            "directory": str(directory.resolve()),
            "healthy": healthy,
            "clusters": [r.to_dict() for r in rows],
        }
        typer.echo(json.dumps(doc, indent=2))
        raise typer.Exit(0 if healthy else 1)
    with_istio = any(r.istiod is not None for r in rows)
    table = Table(title=f"sandbox {directory}")
    columns = ["cluster", "zone", "apiserver", "processes", "ready", "RSS"]
    if with_istio:
        columns.append("istiod (xDS, ready, RSS)")
    for col in columns:
        table.add_column(col)
    for row in rows:
        down = sorted(name for name, ok in row.processes.items() if not ok)
        procs = f"{len(row.processes) - len(down)}/{len(row.processes)} up" + "".join(
            f" [red]{name}[/]" for name in down
        )
        cells = [
            row.name,
            row.zone,
            row.server.removeprefix("https://"),
            procs,
            _yes(row.ready),
            f"{row.rss_bytes / 2**20:.0f} MiB",
        ]
        if row.istiod is not None:
            i = row.istiod
            cells.append(f"{i.xds} {_yes(i.ready)} {i.rss_bytes / 2**20:.0f} MiB")
        elif with_istio:
            cells.append("")
        table.add_row(*cells)
    Console().print(table)
    if not healthy:
        raise typer.Exit(1)


@app.command()
def down(
    directory: DirOption = Path(".sandbox"),
    keep_data: Annotated[bool, typer.Option(help="Keep etcd's data for the next `up`.")] = False,
) -> None:
    """Stop every sandbox process; nothing keeps listening afterwards."""
    try:
        still_open = Sandbox(directory).down(keep_data=keep_data)
    except SandboxError as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(1) from err
    if still_open:
        console.print(f"[red]error:[/red] ports still listening after down: {still_open}")
        raise typer.Exit(1)
    console.print("sandbox down: no process, no listening port left")

"""``meshfed demo`` (what ``make demo`` runs) and ``meshfed demo down``.

``meshfed demo`` brings up the sandbox, the store, the federator, Bookinfo, the load generator
and the console, runs the webinar's steps as drills, prints the table (step, expected, seen,
propagation latency, where to look), writes it to ``<dir>/summary.json`` and leaves everything
running for the console (``--down`` stops it at the end). Ctrl-C stops everything it started.
Exit code 0 when every step was seen, 1 otherwise, 2 when a stage could not run.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.status import Status
from rich.table import Table

from meshfed.demo import state
from meshfed.demo.plan import Row, Timing, row_dict, verdict

app = typer.Typer(
    help="Istio's Bookinfo walk-through as meshfed drills across 3 sandbox clusters.",
    invoke_without_command=True,
    pretty_exceptions_enable=False,
)
console = Console(emoji=False)  # `v3:100` is not an emoji
if not console.is_terminal:  # a CI log or a pipe: wide enough for the table's columns
    console.width = 200
DEFAULT_DIR = Path(".demo")
DirOption = Annotated[Path, typer.Option("--dir", help="State directory (sandbox, logs, reports).")]


def table(rows: list[Row]) -> Table:
    t = Table(title="meshfed demo", show_lines=False)
    for col in ("step", "expected", "seen", "propagation", "where to look"):
        t.add_column(col, overflow="fold")
    for r in rows:
        seen = f"[green]{escape(r.seen)}[/green]" if r.ok else f"[red]{escape(r.seen)}[/red]"
        t.add_row(escape(r.step), escape(r.expected), seen, r.latency_text(), escape(r.where))
    return t


def _down(directory: Path) -> int:
    left = state.down(directory)
    if left:
        console.print(f"[red]still running after down:[/red] {', '.join(left)}")
        return 1
    console.print(f"demo in {directory} stopped: no process left, its ports are free")
    return 0


@app.callback()
def demo(
    ctx: typer.Context,
    directory: DirOption = DEFAULT_DIR,
    base_port: Annotated[
        int, typer.Option(help="First port of the sandbox; the demo's own ports follow it.")
    ] = 24000,
    quick: Annotated[bool, typer.Option(help="Short steps (12 s each), as CI runs it.")] = False,
    down: Annotated[bool, typer.Option(help="Stop everything once the table is printed.")] = False,
) -> None:
    """Run the demo; `meshfed demo down` stops it."""
    if ctx.invoked_subcommand is not None:
        return
    from meshfed.demo.runner import DemoError, Runner  # noqa: PLC0415 - only when running

    directory = directory.resolve()
    old = state.load(directory)
    if old is not None and old.base_port != base_port:
        console.print(f"a demo in {directory} uses --base-port {old.base_port}; "
                      f"run `meshfed demo down --dir {directory}` first")  # fmt: skip
        raise typer.Exit(2)
    started = time.monotonic()
    try:
        with console.status("meshfed demo") as status:
            runner = Runner(directory, base_port, Timing.of(quick=quick), _say(started, status))
            rows = runner.run()
    except KeyboardInterrupt:
        console.print("interrupted: stopping everything the demo started")
        _down(directory)
        raise typer.Exit(130) from None
    except (DemoError, RuntimeError, OSError, subprocess.SubprocessError) as err:
        console.print(f"[red]demo failed:[/red] {escape(str(err))}")
        console.print(
            f"logs: {directory / 'logs'}; stop with `meshfed demo down --dir {directory}`"
        )
        raise typer.Exit(2) from None
    wall = time.monotonic() - started
    console.print(table(rows))
    seen, total = verdict(rows)
    summary = {"rows": [row_dict(r) for r in rows], "seen": seen, "steps": total,
               "wall_s": round(wall, 1), "console": runner.console_url,
               "reports": str(directory / "reports")}  # fmt: skip
    (directory / "summary.json").write_text(json.dumps(summary, indent=2))
    console.print(
        f"{seen}/{total} steps seen in {wall:.0f}s. Console: {runner.console_url} · reports: "
        f"{directory / 'reports'} · summary: {directory / 'summary.json'}\n"
        "The load generator is a test tool: it simulates requests from the routes istiod "
        "serves and writes real telemetry; no packet reaches a pod (kwok pods run no container)."
    )
    code = 0 if seen == total else 1
    if down:
        code = max(code, _down(directory))
    else:
        console.print(
            f"still running for the console; stop with `meshfed demo down --dir {directory}`"
        )
    raise typer.Exit(code)


def _say(started: float, status: Status) -> Callable[[str], None]:
    """Each stage as a timestamped line, and the current one on the spinner."""

    def say(text: str) -> None:
        console.print(f"[dim]{time.monotonic() - started:6.1f}s[/dim] {text}")
        status.update(f"{text} ({time.monotonic() - started:.0f}s)")

    return say


@app.command("down")
def down_command(directory: DirOption = DEFAULT_DIR) -> None:
    """Stop every process of the demo and its sandbox; exit 1 if something is left."""
    raise typer.Exit(_down(directory.resolve()))

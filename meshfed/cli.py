"""The ``meshfed`` command: one entry point whose sub-commands live with their packages.

Sub-commands are imported only when invoked: ``meshfed federate`` never loads the
collectors' stack (Redis client, Starlette, numpy, OpenTelemetry: ~90 MiB of RSS), and
``meshfed collect`` never loads the federator's.
"""

from __future__ import annotations

import importlib
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from meshfed import DISTRIBUTION, installed_version

LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "sandbox": ("meshfed.sandbox.cli", "app"),
    "mesh": ("meshfed.mesh.cli", "app"),
    "certs": ("meshfed.trust.cli", "app"),
    "federate": ("federator.cli", "federate"),
    "plan": ("federator.cli", "plan"),
    "clusters": ("federator.cli", "clusters"),
    "status": ("federator.status_cli", "status"),
    "console": ("meshfed.console.cli", "console"),
    "drill": ("federator.drillctl.cli", "app"),
    "loadgen": ("meshfed.loadgen.cli", "loadgen"),
    "demo": ("meshfed.demo.cli", "app"),
    "collect": ("collectors.app.cli", "collect"),
    "store": ("collectors.app.cli", "store_app"),
}
"""command name -> (module, attribute): a Typer app (a command group) or a function."""


def _load(name: str) -> Any:
    """The click command for ``name``, importing its module now."""
    module, attr = LAZY_COMMANDS[name]
    target: Any = getattr(importlib.import_module(module), attr)
    if isinstance(target, typer.Typer):
        group = typer.main.get_group(target)
        group.name = name
        return group
    single = typer.Typer(pretty_exceptions_enable=False)
    single.command(name)(target)
    return typer.main.get_command(single)


class LazyGroup(TyperGroup):
    """Typer's command group, importing a sub-command's module on first use."""

    def list_commands(self, ctx: Any) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in LAZY_COMMANDS:
            return _load(cmd_name)
        return super().get_command(ctx, cmd_name)


app = typer.Typer(
    cls=LazyGroup,
    help="meshfed: multicluster service-mesh federation and telemetry aggregation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def version_line() -> str:
    """What ``meshfed --version`` and ``meshfed version`` print: ``meshfed <version>``."""
    return f"{DISTRIBUTION} {installed_version()}"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(version_line())
        raise typer.Exit


@app.callback()
def root(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print meshfed's version and exit.",
            callback=_print_version,
            is_eager=True,
        ),
    ] = False,
) -> None:
    """meshfed: multicluster service-mesh federation and telemetry aggregation."""


@app.command()
def version() -> None:
    """Print meshfed's version (the same as `meshfed --version`)."""
    typer.echo(version_line())


def main() -> None:
    app()

"""The ``meshfed`` command: one entry point whose sub-commands live with their packages."""

from __future__ import annotations

import typer

from collectors.cli import collect, store_app
from federator.cli import clusters as clusters_command
from federator.cli import federate as federate_command
from federator.cli import plan as plan_command
from federator.status_cli import status as status_command
from meshfed import __version__
from meshfed.sandbox.cli import app as sandbox_app

app = typer.Typer(
    help="meshfed: multicluster service-mesh federation and telemetry aggregation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(sandbox_app, name="sandbox")

app.add_typer(store_app, name="store")
app.command()(collect)
app.command("status")(status_command)
app.command("federate")(federate_command)
app.command("plan")(plan_command)
app.command("clusters")(clusters_command)


@app.command()
def version() -> None:
    """Print meshfed's version."""
    typer.echo(__version__)


def main() -> None:
    app()

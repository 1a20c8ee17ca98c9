"""The ``meshfed drill`` commands' shared typer options, and the home-cluster option block.

Every command names the federation config, the home cluster and the drills' namespace the same
way, so the options are declared once. ``halt``, ``freeze`` and ``unfreeze`` need nothing else
before they act, so ``home_command`` adds that block to them and hands them a ``Home``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from federator.drillctl.access import config_of, namespace_of, with_home
from federator.drillctl.store import STORE_ENV
from federator.kube.client import KubeClient

T = TypeVar("T")

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="federation.yaml (members; the drills' namespace)"),
]
HomeOpt = Annotated[
    Path | None,
    typer.Option(help="Kubeconfig of the federator's home cluster; default in-cluster"),
]
HomeCtxOpt = Annotated[str | None, typer.Option(help="Context in --home-kubeconfig")]
NamespaceOpt = Annotated[
    str | None,
    typer.Option(help="Namespace of the drills (default: the config's namespace)"),
]
StoreOpt = Annotated[
    str | None,
    typer.Option(help=f"Base URL of the telemetry store's HTTP API (default ${STORE_ENV})"),
]
FileOpt = Annotated[Path, typer.Option("--file", "-f", help="The Drill document (YAML)")]


@dataclass(frozen=True, slots=True)
class Home:
    """Where a drill command acts: the home cluster's credentials and the drills' namespace."""

    kubeconfig: Path | None
    context: str | None
    namespace: str

    def run(self, body: Callable[[KubeClient], Awaitable[T]]) -> T:
        return with_home(self.kubeconfig, self.context, body)


_HOME_OPTIONS = tuple(
    inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=option)
    for name, option in (
        ("config", ConfigOpt),
        ("home_kubeconfig", HomeOpt),
        ("home_context", HomeCtxOpt),
        ("namespace", NamespaceOpt),
    )
)


def home_command(command: Callable[..., None]) -> Callable[..., None]:
    """The shared option block of commands that only act on drills in the home cluster.

    ``command`` takes a keyword ``home: Home``; typer sees ``--config``, ``--home-kubeconfig``,
    ``--home-context`` and ``--namespace`` after the command's own parameters instead (typer has
    no option groups, but reads the signature a function declares), and ``home`` is built from
    them: the namespace is ``--namespace``, else the config's."""
    own = inspect.signature(command, eval_str=True)

    @functools.wraps(command)
    def with_home_options(
        *args: Any,
        config: Path | None,
        home_kubeconfig: Path | None,
        home_context: str | None,
        namespace: str | None,
        **kwargs: Any,
    ) -> None:
        ns = namespace_of(config_of(config), namespace)
        command(*args, home=Home(home_kubeconfig, home_context, ns), **kwargs)

    parameters = [p for p in own.parameters.values() if p.name != "home"]
    with_home_options.__signature__ = own.replace(  # type: ignore[attr-defined]
        parameters=[*parameters, *_HOME_OPTIONS]
    )
    return with_home_options

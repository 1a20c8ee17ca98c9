"""The ``meshfed`` command itself, in process (typer's CliRunner, no sockets): ``--version``,
and the lazy sub-command table (ADR 0009): every entry resolves, and importing the command
imports neither product."""

from __future__ import annotations

import importlib.metadata

import grimp
import pytest
from typer.testing import CliRunner

from meshfed.cli import LAZY_COMMANDS, _load, app

INSTALLED = importlib.metadata.version("meshfed")


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--version"], id="option"),
        pytest.param(["version"], id="command"),
        pytest.param(
            ["--version", "plan", "--config", "missing.yaml"], id="option-wins-over-command"
        ),
    ],
)
def test_version_is_the_installed_distributions(args: list[str]) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.output == f"meshfed {INSTALLED}\n"


def test_version_without_an_installed_distribution_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def not_installed(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output == "meshfed unknown (not installed; run `make setup`)\n"


def test_version_is_listed_in_help() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    assert "--version" in result.output


@pytest.mark.parametrize("name", [pytest.param(name, id=name) for name in sorted(LAZY_COMMANDS)])
def test_every_lazy_sub_command_resolves(name: str) -> None:
    command = _load(name)
    assert command.name == name
    result = CliRunner().invoke(app, [name, "--help"])
    assert result.exit_code == 0, result.output


def test_the_command_imports_no_product_until_a_sub_command_runs() -> None:
    graph = grimp.build_graph("meshfed", "federator", "collectors", cache_dir=None)
    loaded = graph.find_upstream_modules("meshfed.cli")
    assert not sorted(m for m in loaded if m.partition(".")[0] in ("federator", "collectors"))

"""Fixtures of the packaging tests: the working tree as git would ship it, built and installed.

A test must see the current tree, not the last commit, so the tree is copied file by file
from ``git ls-files`` (tracked plus new, not ignored: exactly what a commit of it and then a
``git archive`` would hold; ignored build products such as ``_generated`` stay out). From that
copy: ``python -m build`` (an sdist, then a wheel built from the sdist, as a user's ``pip
install meshfed`` would; without build isolation, the dev venv has the pinned build
requirements, to save a minute), and fresh venvs installed the way the container image
installs (``deploy/image/install.sh``) or with a plain ``pip install .`` (with build
isolation, like a user's). The dependencies are downloaded from PyPI once, into a wheelhouse
the installs and the image build use offline. The build and the wheelhouse are shared by the
package's modules, the venvs by the tests of a module.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.paths import REPO_ROOT

INSTALL_SH = REPO_ROOT / "deploy" / "image" / "install.sh"

WALK_COMMANDS = """
import json
import typer
from meshfed.cli import app

def walk(command, path):
    yield path
    if hasattr(command, "list_commands"):
        ctx = type(command).context_class(command)
        for name in command.list_commands(ctx):
            yield from walk(command.get_command(ctx, name), [*path, name])

print(json.dumps(list(walk(typer.main.get_command(app), []))))
"""
"""Prints every command path of the ``meshfed`` app (``[]`` is the root) as JSON."""

HELP_ALL = """
import json, sys
from typer.testing import CliRunner
from meshfed.cli import app

runner = CliRunner()
out = {}
for path in json.loads(sys.argv[1]):
    result = runner.invoke(app, [*path, "--help"], prog_name="meshfed")
    out[" ".join(path)] = [result.exit_code, result.output, repr(result.exception)]
print(json.dumps(out))
"""
"""Runs ``--help`` of every given command path in one process (imports are the slow part)."""


def run(
    argv: list[str | Path], *, timeout: float = 600, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    """``argv`` run to completion; a non-zero exit fails the test with its output."""
    done = subprocess.run(
        [str(a) for a in argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,  # type: ignore[call-overload]
    )
    if done.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, argv))} exited {done.returncode}\n"
            f"stdout:\n{done.stdout[-4000:]}\nstderr:\n{done.stderr[-4000:]}"
        )
    return done


def command_paths(python: str | Path) -> list[list[str]]:
    """Every ``meshfed`` command path, as the given interpreter's installed meshfed has it."""
    return list(json.loads(run([python, "-c", WALK_COMMANDS]).stdout))


def copy_worktree(dest: Path) -> Path:
    """The files git would commit now (tracked and new, not ignored), copied to ``dest``."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for raw in filter(None, listed):
        relative = raw.decode()
        source = REPO_ROOT / relative
        if not source.is_file():  # deleted in the working tree, not yet in a commit
            continue
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    return dest


@dataclass(frozen=True)
class Built:
    tree: Path
    """The copied working tree."""
    sdist: Path
    wheel: Path
    seconds: float


@dataclass(frozen=True)
class Venv:
    root: Path
    seconds: float

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def meshfed(self) -> Path:
        return self.root / "bin" / "meshfed"


def _report(what: str, seconds: float) -> None:
    sys.stderr.write(f"\n[packaging] {what}: {seconds:.1f} s\n")


@pytest.fixture(scope="package")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """sdist and wheel of the working tree (the wheel is built from the sdist)."""
    tree = copy_worktree(tmp_path_factory.mktemp("tree") / "meshfed")
    dist = tmp_path_factory.mktemp("dist")
    started = time.monotonic()
    run([sys.executable, "-m", "build", "--no-isolation", "--outdir", dist, tree], cwd=tree)
    seconds = time.monotonic() - started
    _report("python -m build --no-isolation (sdist, then wheel from it)", seconds)
    (sdist,) = dist.glob("meshfed-*.tar.gz")
    (wheel,) = dist.glob("meshfed-*.whl")
    return Built(tree=tree, sdist=sdist, wheel=wheel, seconds=seconds)


@pytest.fixture(scope="package")
def wheelhouse(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel's dependencies and the build requirements, downloaded from PyPI once."""
    house = tmp_path_factory.mktemp("wheelhouse")
    requires = tomllib.loads((built.tree / "pyproject.toml").read_text())["build-system"]
    started = time.monotonic()
    pip = [sys.executable, "-m", "pip", "download", "--quiet", "--dest", house]
    run([*pip, built.wheel, *requires["requires"], "pip"])
    _report("pip download (dependencies and build requirements)", time.monotonic() - started)
    return house


def _new_venv(root: Path, install: list[str | Path], what: str, wheelhouse: Path) -> Venv:
    started = time.monotonic()
    offline = {"PIP_FIND_LINKS": str(wheelhouse), "PIP_NO_INDEX": "1"}
    run(install, env={**os.environ, **offline, "PYTHON": sys.executable})
    seconds = time.monotonic() - started
    _report(what, seconds)
    return Venv(root=root, seconds=seconds)


@pytest.fixture(scope="module")
def wheel_venv(
    built: Built, wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Venv]:
    """A fresh venv with the wheel, installed by the container image's install script."""
    root = tmp_path_factory.mktemp("wheel-venv") / "venv"
    install = ["sh", INSTALL_SH, root, built.wheel]
    yield _new_venv(root, install, "install.sh: venv + wheel", wheelhouse)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def plain_venv(
    built: Built, wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Venv]:
    """A fresh venv with a plain ``pip install`` of the wheel: what a user's ``pip install
    meshfed`` gives, with no install script to fix anything afterwards."""
    root = tmp_path_factory.mktemp("plain-venv") / "venv"
    run([sys.executable, "-m", "venv", root])
    pip = [root / "bin" / "pip", "install", "--quiet", "--disable-pip-version-check"]
    yield _new_venv(root, [*pip, built.wheel], "pip install meshfed-*.whl", wheelhouse)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def source_venv(
    built: Built, wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Venv]:
    """A fresh venv with a plain ``pip install .`` of the copied tree (no wheel, no script)."""
    root = tmp_path_factory.mktemp("source-venv") / "venv"
    run([sys.executable, "-m", "venv", root])
    pip = [root / "bin" / "pip", "install", "--quiet", "--disable-pip-version-check"]
    yield _new_venv(root, [*pip, built.tree], "pip install . (copied tree)", wheelhouse)
    shutil.rmtree(root, ignore_errors=True)

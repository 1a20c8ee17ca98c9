"""The package as a user gets it: sdist and wheel contents, every command of a fresh install.

The wheel must carry the gRPC code generated at build time (it is not in git) and the sdist
what generating it needs; in a fresh venv every command and sub-command answers ``--help``
(enumerated from the typer app, so a new command is covered without editing this file), the
installed command tree is the checkout's, ``meshfed collect --check`` validates without
binding anything, and a plain ``pip install .`` of the tree gives a working
``meshfed federate``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import zipfile
from typing import Any

import pytest

from tests.integration.packaging.conftest import HELP_ALL, Built, Venv, command_paths, run

CHECKOUT_COMMANDS = command_paths(sys.executable)
"""The checkout's command tree, collected from the typer app in this interpreter."""


def test_sdist_carries_the_protos_and_the_generator(built: Built) -> None:
    with tarfile.open(built.sdist) as sdist:
        names = {n.split("/", 1)[1] for n in sdist.getnames() if "/" in n}
    needed = {"protos/meshfed/v1/federation.proto", "scripts/gen_protos.py", "setup.py"}
    assert needed <= names, f"missing from the sdist: {sorted(needed - names)}"
    assert not [n for n in names if "_generated" in n], "generated code belongs in no sdist"


def test_wheel_carries_the_generated_grpc_code(built: Built) -> None:
    with zipfile.ZipFile(built.wheel) as wheel:
        names = set(wheel.namelist())
    generated = "federator/api/_generated/meshfed/v1/"
    for name in ("federation_pb2.py", "federation_pb2.pyi", "federation_pb2_grpc.py"):
        assert generated + name in names
    data = [
        path.relative_to(built.tree).as_posix()
        for package in ("meshfed", "federator", "collectors")
        for path in (built.tree / package).rglob("*")
        if path.is_file() and path.suffix != ".py" and "__pycache__" not in path.parts
    ]
    assert "federator/py.typed" in data
    assert not [name for name in data if name not in names], "package data missing"


def test_installed_commands_are_the_checkouts(wheel_venv: Venv) -> None:
    assert command_paths(wheel_venv.python) == CHECKOUT_COMMANDS


@pytest.fixture(scope="module")
def helps(wheel_venv: Venv) -> dict[str, list[Any]]:
    """``--help`` of every command of the checkout, run by the installed package."""
    done = run([wheel_venv.python, "-c", HELP_ALL, json.dumps(CHECKOUT_COMMANDS)], timeout=300)
    return dict(json.loads(done.stdout))


@pytest.mark.parametrize(
    "path", [pytest.param(p, id=" ".join(p) or "meshfed") for p in CHECKOUT_COMMANDS]
)
def test_every_command_answers_help(helps: dict[str, list[Any]], path: list[str]) -> None:
    exit_code, output, exception = helps[" ".join(path)]
    assert exit_code == 0, f"{output}\n{exception}"
    assert f"Usage: meshfed {' '.join(path)}".strip() in output


@pytest.mark.parametrize(
    "path",
    [pytest.param(["--help"], id="root"), pytest.param(["federate", "--help"], id="federate")],
)
def test_the_console_script_runs(wheel_venv: Venv, path: list[str]) -> None:
    assert "Usage: meshfed" in run([wheel_venv.meshfed, *path], timeout=60).stdout


def test_version_is_the_distributions(wheel_venv: Venv) -> None:
    assert run([wheel_venv.meshfed, "--version"]).stdout.strip() == "meshfed 0.1.0"


def test_collect_check_validates_without_serving(wheel_venv: Venv) -> None:
    # Port 1 on loopback needs root to bind: if --check bound anything it would fail or hang.
    done = run([wheel_venv.meshfed, "collect", "--check", "--http", "127.0.0.1:1"], timeout=60)
    assert "configuration is valid" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["--set", "http.tls_cert_file=/nonexistent.pem"],
            "http.tls_key_file is not set",
            id="cert-without-key",
        ),
        pytest.param(
            ["--http-token-file", "/nonexistent-token"],
            "http.bearer_token_file '/nonexistent-token' is not a readable file",
            id="token-file-missing",
        ),
        pytest.param(["--http", "nohost"], "http.listen", id="bad-listen"),
    ],
)
def test_collect_check_reports_config_errors(
    wheel_venv: Venv, args: list[str], message: str
) -> None:
    done = subprocess.run(
        [wheel_venv.meshfed, "collect", "--check", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert message in done.stderr


def test_pip_install_of_the_tree_gives_a_working_federate(source_venv: Venv) -> None:
    done = run([source_venv.root / "bin" / "meshfed", "federate", "--help"], timeout=60)
    assert "Usage: meshfed federate" in done.stdout
    status = run([source_venv.root / "bin" / "meshfed", "status", "--help"], timeout=60)
    assert "--token-file" in status.stdout

"""The Dockerfile, built into an OCI image and run read-only, with Debian's tools only.

No registry is reachable, so ``python:3.11-slim`` is replaced by an image made from a Debian
root filesystem (``deploy/image/debian-base.sh``: debootstrap, python3 3.11, ``make setup``
imports it); the Dockerfile itself is unchanged and built by ``buildah bud`` with pip reading
a local wheelhouse (build args ``PIP_FIND_LINKS``/``PIP_NO_INDEX``). ``podman`` runs it with
``runc`` (this machine's hybrid cgroups are not crun's), a read-only root filesystem, a tmpfs
``/tmp`` and a data volume: commands answer, ``meshfed collect`` serves, and the process is
65532 writing nowhere else (the root filesystem refuses writes, so any other write would
be an error in its log).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers.processes import free_port
from tests.integration.packaging.conftest import Built, run

BASE_IMAGE = "localhost/meshfed-python-base:bookworm"
IMAGE = "localhost/meshfed:packaging-test"
TOOLS = {"buildah": "buildah", "podman": "podman", "runc": "runc"}
# Namespaces here cannot raise limits; podman's defaults would ask for more than the host has.
RUN = [
    "podman",
    "--runtime",
    "runc",
    "run",
    "--read-only",
    "--tmpfs",
    "/tmp:rw,size=64m",
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=1024:1024",
]


@pytest.fixture(scope="module")
def image(built: Built, wheelhouse: Path) -> Iterator[str]:
    missing = [package for tool, package in TOOLS.items() if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"missing: run `apt-get install -y {' '.join(missing)} debootstrap`")
    if subprocess.run(["podman", "image", "exists", BASE_IMAGE], check=False).returncode:
        pytest.fail(f"no {BASE_IMAGE}: run `bash deploy/image/debian-base.sh` (make setup does)")
    # The base image's Python is Debian's 3.11.2, for which redis also needs async-timeout
    # (a python_full_version marker, which pip download does not evaluate for another Python).
    pip = [sys.executable, "-m", "pip", "download", "--quiet", "--dest", wheelhouse]
    run([*pip, "async-timeout>=4.0.3"])
    bud = ["buildah", "bud", "--layers=false", "--isolation", "chroot", "--network", "host"]
    args = {
        "PYTHON_IMAGE": BASE_IMAGE,
        "PIP_FIND_LINKS": "/wheelhouse",
        "PIP_NO_INDEX": "1",
    }
    started = time.monotonic()
    run(
        [
            *bud,
            "-v",
            f"{wheelhouse}:/wheelhouse:ro",
            *(f"--build-arg={k}={v}" for k, v in args.items()),
            "-t",
            IMAGE,
            built.tree,
        ],
        timeout=900,
    )
    seconds = time.monotonic() - started
    os.write(2, f"\n[packaging] buildah bud (offline wheelhouse): {seconds:.1f} s\n".encode())
    yield IMAGE
    subprocess.run(["podman", "rmi", "-f", IMAGE], capture_output=True, check=False)


def test_image_runs_as_non_root_with_meshfed_as_entrypoint(image: str) -> None:
    config = json.loads(run(["podman", "image", "inspect", image]).stdout)[0]["Config"]
    assert config["User"] == "65532:65532"
    assert config["Entrypoint"] == ["meshfed"]
    assert "PYTHONDONTWRITEBYTECODE=1" in config["Env"]
    ids = run([*RUN, "--rm", "--network", "none", "--entrypoint", "id", image]).stdout
    assert ids.startswith("uid=65532(65532) gid=65532(65532)")
    touch = [*RUN, "--rm", "--network", "none", "--entrypoint", "touch", image]
    for path in ("/opt/meshfed/written", "/var/lib/meshfed/written"):  # a volume in production
        refused = subprocess.run([*touch, path], capture_output=True, text=True, check=False)
        assert refused.returncode != 0
        assert "Read-only file system" in refused.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(["--version"], "meshfed 0.1.0", id="version"),
        pytest.param(["federate", "--help"], "Usage: meshfed federate", id="federate-help"),
        pytest.param(["status", "--help"], "--token-file", id="status-help"),
        pytest.param(["collect", "--check"], "configuration is valid", id="collect-check"),
        pytest.param(["store", "serve", "--help"], "--tls-cert", id="store-serve-help"),
    ],
)
def test_commands_answer_on_a_read_only_root(image: str, args: list[str], expected: str) -> None:
    done = run([*RUN, "--rm", "--network", "none", image, *args], timeout=120)
    assert expected in done.stdout


def test_collect_serves_writing_only_to_its_volume_and_tmp(image: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    os.chown(data, 65532, 65532)
    port = free_port()
    name = f"meshfed-packaging-{port}"
    argv = [
        *RUN,
        "--detach",
        "--name",
        name,
        "--network",
        "host",
        "-v",
        f"{data}:/var/lib/meshfed",
        image,
        "collect",
        "--http",
        f"127.0.0.1:{port}",
        "--disable",
        "statsd",
        "--disable",
        "forward",
        "--disable",
        "otlp",
    ]
    run(argv)
    try:
        for _ in range(150):  # bounded: 60 s
            try:
                if httpx.get(f"http://127.0.0.1:{port}/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            state = run(["podman", "inspect", "--format", "{{.State.Running}}", name]).stdout
            assert state.strip() == "true", run(["podman", "logs", name]).stderr
            time.sleep(0.4)
        else:
            pytest.fail(f"collect never got ready: {run(['podman', 'logs', name]).stderr}")
        labels = httpx.get(f"http://127.0.0.1:{port}/api/v1/labels", timeout=5)
        assert labels.json()["status"] == "success"
        written = {p.name for p in data.rglob("*")}
        assert "redis" in written, f"no embedded Redis data in the volume: {sorted(written)}"
    finally:
        subprocess.run(["podman", "stop", "-t", "20", name], capture_output=True, check=False)
        logs = subprocess.run(["podman", "logs", name], capture_output=True, text=True, check=False)
        subprocess.run(["podman", "rm", "-f", name], capture_output=True, check=False)
    assert "Read-only file system" not in logs.stdout + logs.stderr

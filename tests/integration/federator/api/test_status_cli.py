"""``meshfed status`` run as a subprocess against the real gRPC API server: the tables, the
event watch, and the message when no federator answers."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from tests.helpers.federator_api_harness import Api, api, until
from tests.helpers.federator_world import CART, change
from tests.helpers.processes import free_port

pytestmark = pytest.mark.timeout(60)
__all__ = ["api"]

CLI = [sys.executable, "-c", "from meshfed.cli import main; main()", "status"]


async def run_cli(*args: str) -> tuple[int, str, str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    proc = await asyncio.create_subprocess_exec(
        *CLI, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_meshfed_status_prints_the_tables(api: Api) -> None:
    api.registry.set_ready(True)
    code, out, err = await run_cli("--server", api.address)
    assert code == 0, err
    assert "federator ready: 3 clusters, 2 global services, 1 conflicts" in out
    lines = out.splitlines()
    (c3,) = [line for line in lines if "│ c3 " in line]
    assert "no" in c3
    assert "connection refused" in c3
    assert "never" in c3
    (reviews,) = [line for line in lines if "default/reviews" in line and "│" in line]
    assert "c1, c2" in reviews
    assert "c1: 2/2" in reviews
    assert "c1: 2024-01-01 00:01:00Z" in reviews
    assert any("shop/cart" in line for line in lines)
    assert "conflict default/reviews: default/reviews in c2 defines port 9080" in out


async def test_meshfed_status_watch_prints_events(api: Api) -> None:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        "--server",
        api.address,
        "--watch",
        "--limit",
        "2",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )

    async def subscribed() -> bool:
        return api.server.open_streams == 1

    await until(subscribed, attempts=1000)
    api.registry.publish(change(1, key=CART, op="create"))
    api.registry.publish(change(2, op="delete"))
    out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 0, err.decode()
    text = out.decode()
    assert "#1 create ServiceEntry shop/meshfed-cart in c3" in text
    assert "#2 delete ServiceEntry default/meshfed-reviews in c3" in text


async def test_meshfed_status_without_server_says_what_to_do() -> None:
    code, out, err = await run_cli("--server", f"127.0.0.1:{free_port()}", "--timeout", "5")
    assert code != 0
    assert "is `meshfed federate` running?" in err.lower()
    assert "listen.grpc" in err
    assert out == ""

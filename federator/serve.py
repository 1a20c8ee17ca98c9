"""The federator's long-running process: ``python -m federator --config federation.yaml``.

``meshfed federate`` checks its options and the configuration with the CLI, then replaces
itself with this entry point (``exec``: same PID, same signals, same stdout/stderr). Why:
the CLI's libraries (typer, which pulls in pydantic, rich with markdown-it and pygments,
click) are ~17 MiB of resident memory that a process running for weeks never uses again.
This module imports only what the federator runs (``federator.app``), parses four options
with ``argparse`` and runs until SIGINT/SIGTERM; a bad configuration exits 1 with one line,
as the CLI does.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from federator.app import Federator
from federator.core.config import FederationConfig
from federator.core.config_parse import load_config
from federator.errors import ConfigError, PermanentError
from federator.kube.client import Credentials
from federator.kube.clusters import file_credentials, in_cluster_credentials

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def home_credentials(
    config: FederationConfig,
    home_kubeconfig: Path | None,
    home_context: str | None,
    *,
    lease: bool = False,
) -> Credentials | None:
    """The home cluster's credentials, if a member's kubeconfig is in a Secret there or
    (``lease``: ``federate``) the leader Lease or the Drill objects are."""
    if not (lease and (config.leader_election.enabled or config.drills.enabled)) and not any(
        c.secret is not None for c in config.clusters
    ):
        return None
    if home_kubeconfig is not None:
        return file_credentials(str(home_kubeconfig), home_context)
    return in_cluster_credentials()


def command_line(
    config: Path, home_kubeconfig: Path | None, home_context: str | None, log_level: str
) -> list[str]:
    """The argv that runs this entry point with these options (``meshfed federate`` execs it)."""
    argv = [sys.executable, "-m", "federator", "--config", str(config), "--log-level", log_level]
    if home_kubeconfig is not None:
        argv += ["--home-kubeconfig", str(home_kubeconfig)]
    if home_context is not None:
        argv += ["--home-context", home_context]
    return argv


async def run(config: FederationConfig, home: Credentials | None) -> None:
    """Start a ``Federator`` and run it until SIGINT or SIGTERM, then shut it down."""
    federator = Federator(config=config, home=home)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await federator.start()
        await stop.wait()
    finally:
        await federator.shutdown()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m federator", description="Run the federator until SIGINT/SIGTERM."
    )
    parser.add_argument("--config", "-c", type=Path, required=True, help="federation.yaml")
    parser.add_argument("--home-kubeconfig", type=Path, help="kubeconfig of the home cluster")
    parser.add_argument("--home-context", help="context in --home-kubeconfig")
    parser.add_argument("--log-level", default="INFO", type=str.upper, choices=LOG_LEVELS)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        config = load_config(args.config)
        home = home_credentials(config, args.home_kubeconfig, args.home_context, lease=True)
        asyncio.run(run(config, home))
    except (ConfigError, PermanentError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0

"""``meshfed store ...``: run the telemetry store's query API.

Thin: parses options, builds settings (validated, so a bad value stops here with the fix
in the message), starts the ``TelemetryStore`` and serves the query app with uvicorn until
SIGTERM or SIGINT, then shuts the server and the store down in that order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from collectors._core.errors import CollectorError, ConfigError
from collectors.api.app import build_app
from collectors.api.prometheus import PrometheusApiSettings
from collectors.app.cli_collect import collect
from collectors.store.config import RedisSettings, StoreSettings
from collectors.store.store import TelemetryStore

log = logging.getLogger(__name__)

__all__ = ["collect", "parse_listen", "store_app"]

store_app = typer.Typer(help="The telemetry store and its query API.", no_args_is_help=True)


def parse_listen(listen: str) -> tuple[str, int]:
    """``host:port`` -> (host, port); the error says how to write it."""
    host, sep, port_text = listen.rpartition(":")
    if not sep or not host:
        raise ConfigError(
            f"--listen {listen!r} needs a host and a port, e.g. --listen 127.0.0.1:9201"
        )
    host = host.strip("[]")
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(
            f"--listen {listen!r}: port {port_text!r} is not a number; e.g. 127.0.0.1:9201"
        ) from None
    if not 0 < port < 65536:
        raise ConfigError(f"--listen {listen!r}: port must be within 1..65535")
    return host, port


@store_app.command()
def serve(
    listen: Annotated[str, typer.Option(help="host:port of the HTTP query API.")] = (
        "127.0.0.1:9201"
    ),
    redis_url: Annotated[
        str | None,
        typer.Option(
            help="redis:// (or rediss://, unix://, redis+cluster://) URL; default: embedded."
        ),
    ] = None,
    data_dir: Annotated[
        Path, typer.Option(help="Where the embedded Redis keeps its AOF and socket.")
    ] = Path("./.meshfed-data"),
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Serve the Prometheus-compatible, trace and log query API over the store."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    try:
        host, port = parse_listen(listen)
        settings = StoreSettings(redis=RedisSettings(url=redis_url, data_dir=data_dir / "redis"))
        settings.validate()
        api_settings = PrometheusApiSettings()
        api_settings.validate()
    except ConfigError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    try:
        asyncio.run(_serve(host, port, settings, api_settings))
    except CollectorError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from e


class _Server(uvicorn.Server):
    """uvicorn without its own signal capture: ours stops the server, then the store."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _serve(
    host: str, port: int, settings: StoreSettings, api_settings: PrometheusApiSettings
) -> None:
    store = TelemetryStore(settings=settings)
    await store.start()
    try:
        app = build_app(store=store, settings=api_settings)
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
        server = _Server(config)
        loop = asyncio.get_running_loop()

        def stop() -> None:
            server.should_exit = True

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)
        log.info("query API listening on http://%s:%d", host, port)
        await server.serve()
    finally:
        await store.shutdown()
        log.info("query API stopped")

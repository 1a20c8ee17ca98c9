"""``meshfed store ...``: run the telemetry store's query API.

Thin: parses options, builds settings (validated, so a bad value stops here with the fix
in the message), starts the ``TelemetryStore`` and serves the query app with
:class:`collectors._kits.http_server.HttpServer` until SIGTERM or SIGINT, then shuts the
server and the store down in that order.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Annotated

import typer

from collectors._core.errors import CollectorError, ConfigError
from collectors._core.net import parse_host_port
from collectors._kits.http_server import HttpServer
from collectors.api.app import build_app
from collectors.api.prometheus import PrometheusApiSettings
from collectors.app.cli_collect import collect
from collectors.store.config import RedisSettings, StoreSettings
from collectors.store.store import TelemetryStore

log = logging.getLogger(__name__)

__all__ = ["collect", "store_app"]

store_app = typer.Typer(help="The telemetry store and its query API.", no_args_is_help=True)


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
        host, port = parse_host_port(listen, field="--listen")
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


async def _serve(
    host: str, port: int, settings: StoreSettings, api_settings: PrometheusApiSettings
) -> None:
    store = TelemetryStore(settings=settings)
    await store.start()
    server = HttpServer(
        app=build_app(store=store, settings=api_settings),
        listen=(host, port),
        setting_name="--listen",
        name="query API",
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await server.start()
        await stop.wait()
    finally:
        try:
            await server.shutdown()
        finally:
            await store.shutdown()
            log.info("query API stopped")

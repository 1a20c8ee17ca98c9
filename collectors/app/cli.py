"""``meshfed store ...``: run the telemetry store's query API.

Thin: parses options, builds settings (validated, so a bad value stops here with the fix
in the message), starts the ``TelemetryStore`` and serves the query app with
:class:`collectors._kits.http_server.HttpServer` until SIGTERM or SIGINT, then shuts the
server and the store down in that order. ``--tls-*`` and ``--token-file`` secure it like the
``http`` section of ``meshfed collect`` (``collectors.app.http_auth``).
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
from collectors._kits.http_server import HttpServer, ServerTls
from collectors.api.app import build_app
from collectors.api.prometheus import PrometheusApiSettings
from collectors.app.cli_collect import collect
from collectors.app.http_auth import check_security, protect
from collectors.store.config import RedisSettings, StoreSettings
from collectors.store.store import TelemetryStore
from collectors.store.supervisor import EmbeddedRedisSupervisor

log = logging.getLogger(__name__)

__all__ = ["collect", "store_app"]

store_app = typer.Typer(help="The telemetry store and its query API.", no_args_is_help=True)


@store_app.command()
def serve(  # noqa: PLR0917 - typer maps parameters to options
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
    token_file: Annotated[
        Path | None, typer.Option(help="File holding the bearer token requests must send.")
    ] = None,
    tls_cert: Annotated[Path | None, typer.Option(help="Server certificate (PEM).")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="Its private key (PEM).")] = None,
    tls_client_ca: Annotated[
        Path | None, typer.Option(help="CA client certificates must chain to (mTLS).")
    ] = None,
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
        check_security(
            cert=("--tls-cert", tls_cert),
            key=("--tls-key", tls_key),
            client_ca=("--tls-client-ca", tls_client_ca),
            token_file=("--token-file", token_file),
        )
    except ConfigError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    tls = ServerTls(tls_cert, tls_key, tls_client_ca) if tls_cert and tls_key else None
    try:
        asyncio.run(_serve(host, port, settings, api_settings, tls=tls, token_file=token_file))
    except CollectorError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from e


async def _serve(
    host: str,
    port: int,
    settings: StoreSettings,
    api_settings: PrometheusApiSettings,
    *,
    tls: ServerTls | None,
    token_file: Path | None,
) -> None:
    store = TelemetryStore(settings=settings)
    await store.start()
    embedded = store.connection.embedded
    supervisor = EmbeddedRedisSupervisor(server=embedded) if embedded is not None else None
    if supervisor is not None:  # restarts the embedded Redis if its process dies
        await supervisor.start()
    liveness = supervisor.unrecoverable if supervisor is not None else None
    app = build_app(store=store, settings=api_settings, liveness=liveness)
    server = HttpServer(
        app=protect(app, token_file=token_file, name="--token-file"),
        listen=(host, port),
        setting_name="--listen",
        name="query API",
        tls=tls,
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
            if supervisor is not None:
                await supervisor.shutdown()
            await store.shutdown()
            log.info("query API stopped")

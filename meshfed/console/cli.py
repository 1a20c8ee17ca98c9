"""``meshfed console``: serve the web console on loopback (by default) until Ctrl-C."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from federator.core.config_parse import load_config
from federator.errors import ConfigError
from meshfed.console.app import Console
from meshfed.console.kube_objects import ObjectReader
from meshfed.console.settings import (
    ConsoleSettings,
    ConsoleSettingsError,
    GrpcTarget,
    IstiodPlace,
    StoreTarget,
    parse_istiods,
)

FileOption = Path | None


def istiods_from_sandbox(directory: Path) -> tuple[IstiodPlace, ...]:
    """Every sandbox cluster's istiod and locality (``meshfed sandbox up --istio``)."""
    # Only with --sandbox: the console itself is a client of any federation, not of the
    # dev sandbox (an import-linter contract allows exactly these two imports, here).
    from meshfed.sandbox import processes  # noqa: PLC0415
    from meshfed.sandbox.layout import Topology, plan_layout  # noqa: PLC0415

    state = processes.load_state(directory.resolve())
    if state is None or not state.istio:
        raise ConsoleSettingsError(
            f"--sandbox {directory}: no sandbox with istiod there; start one with "
            "`meshfed sandbox up --istio` or pass --istiod NAME=HOST:PORT"
        )
    layout = plan_layout(
        directory=directory,
        clusters=state.clusters,
        topology=Topology(state.topology),
        base_port=state.base_port,
        istio=state.istio,
    )
    return tuple(
        IstiodPlace(c.name, f"127.0.0.1:{c.istiod.grpc}", c.region, c.zone, c.network)
        for c in layout.clusters
    )


def console(  # noqa: PLR0917 - typer maps parameters to options
    federator: Annotated[
        str, typer.Option(help="host:port of the federator's gRPC API (its listen.grpc).")
    ] = GrpcTarget.address,
    store: Annotated[
        str, typer.Option(help="Base URL of the store's query API (meshfed collect http.listen).")
    ] = StoreTarget.url,
    port: Annotated[int, typer.Option(help="Port to serve the console on (0: any free).")] = 9300,
    host: Annotated[
        str, typer.Option(help="Address to bind; loopback by default (the console has no login).")
    ] = "127.0.0.1",
    federation_config: Annotated[
        FileOption,
        typer.Option(
            help="The federation.yaml: cluster regions, topology, and the ServiceEntry/"
            "DestinationRule per cluster on the Service page (read with its kubeconfigs)."
        ),
    ] = None,
    federator_metrics: Annotated[
        str,
        typer.Option(help="URL of the federator's /metrics (listen.http): propagation latency."),
    ] = "",
    federator_token_file: Annotated[
        FileOption, typer.Option(help="File holding the federator API's bearer token.")
    ] = None,
    federator_ca: Annotated[
        FileOption, typer.Option(help="CA (PEM) of the federator: TLS.")
    ] = None,
    federator_cert: Annotated[FileOption, typer.Option(help="Client cert (PEM), mTLS.")] = None,
    federator_key: Annotated[
        FileOption, typer.Option(help="Key (PEM) of --federator-cert.")
    ] = None,
    federator_server_name: Annotated[
        str, typer.Option(help="Name to verify in the federator's certificate.")
    ] = "",
    store_token_file: Annotated[
        FileOption, typer.Option(help="File holding the store's bearer token.")
    ] = None,
    store_ca: Annotated[FileOption, typer.Option(help="CA (PEM) of the store's HTTPS.")] = None,
    store_cert: Annotated[FileOption, typer.Option(help="Client cert (PEM) for the store.")] = None,
    store_key: Annotated[FileOption, typer.Option(help="Key (PEM) of --store-cert.")] = None,
    series_cap: Annotated[
        int, typer.Option(help="The store's store.limits.max_series_per_tenant, shown as the cap.")
    ] = StoreTarget.series_cap,
    istiod: Annotated[
        list[str] | None,
        typer.Option(
            help="NAME=HOST:PORT of a cluster's istiod (plaintext xDS, repeatable): the Service "
            "page shows what it serves (needs the optional mesh extra of meshfed)."
        ),
    ] = None,
    sandbox: Annotated[
        FileOption,
        typer.Option(help="A `meshfed sandbox up --istio` directory: its istiods, as --istiod."),
    ] = None,
) -> None:
    """Serve the web console: federation state and the mesh's telemetry side by side."""
    try:
        places = parse_istiods(istiod or [])
        if sandbox is not None:
            places += istiods_from_sandbox(sandbox)
    except ConsoleSettingsError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    settings = ConsoleSettings(
        federator=GrpcTarget(
            address=federator,
            token_file=federator_token_file,
            ca=federator_ca,
            cert=federator_cert,
            key=federator_key,
            server_name=federator_server_name,
        ),
        store=StoreTarget(
            url=store,
            token_file=store_token_file,
            ca=store_ca,
            cert=store_cert,
            key=store_key,
            series_cap=series_cap,
        ),
        host=host,
        port=port,
        federator_metrics=federator_metrics,
        istiods=places,
    )
    try:
        objects = ObjectReader(load_config(federation_config)) if federation_config else None
        app = Console(settings, objects).app()
    except (ConsoleSettingsError, ConfigError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"meshfed console on http://{host}:{port}/ (Ctrl-C to stop)")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)

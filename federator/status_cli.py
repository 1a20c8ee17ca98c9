"""``meshfed status``: ask a running ``meshfed federate`` how the federation is doing.

Thin client of the gRPC status API (``protos/meshfed/v1/federation.proto``): one GetStatus
and one ListServices call, printed as two tables (clusters, global services); ``--watch``
then follows WatchEvents and prints one line per change the federator applies. It reads
nothing from clusters itself, so it works wherever the API port is reachable. ``--ca`` turns
TLS on (``--cert``/``--key`` add a client certificate for mutual TLS); the bearer token comes
from ``--token-file`` or ``MESHFED_API_TOKEN`` and is sent as ``authorization`` metadata.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC
from pathlib import Path
from typing import Annotated, Any

import grpc
import typer
from google.protobuf.timestamp_pb2 import Timestamp
from rich.console import Console
from rich.table import Table

from federator.api._generated.meshfed.v1 import federation_pb2 as pb
from federator.api._generated.meshfed.v1 import federation_pb2_grpc as pb_grpc
from federator.core.config import ListenSettings

DEFAULT_SERVER = ListenSettings().grpc
"""The default of ``listen.grpc`` in the federation config, where ``federate`` listens."""

TOKEN_ENV = "MESHFED_API_TOKEN"  # noqa: S105 - a variable name, not a secret
"""Environment variable holding the API token (``--token-file`` wins)."""

Metadata = Sequence[tuple[str, str]]

MAX_CONFLICT_LINES = 20
"""Conflict messages printed under the services table (the table always counts them all)."""


def _when(ts: Timestamp) -> str:
    if not ts.seconds and not ts.nanos:
        return "never"
    return ts.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _yes(value: bool) -> str:
    return "[green]yes[/]" if value else "[red]no[/]"


def _staleness(c: pb.ClusterStatus) -> str:
    return f"{c.staleness_seconds:.0f}s" if c.HasField("staleness_seconds") else "yes"


def _gateway(g: pb.GatewayHealth) -> str:
    if g.state == pb.GatewayHealth.STATE_DOWN:
        return f"[red]down[/] ({g.consecutive_failures} failed)"
    if g.state == pb.GatewayHealth.STATE_UP:
        return "[green]up[/]"
    return "-"


def clusters_table(clusters: list[pb.ClusterStatus]) -> Table:
    table = Table(title="Clusters", title_justify="left")
    for column in ("Cluster", "Reachable", "Synced", "Stale", "Last sync", "Gateway"):
        table.add_column(column)
    table.add_column("Exported", justify="right")
    table.add_column("Imported", justify="right")
    table.add_column("Error")
    for c in clusters:
        table.add_row(
            c.name,
            _yes(c.reachable),
            _yes(c.synced),
            f"[yellow]{_staleness(c)}[/]" if c.stale else "no",
            _when(c.last_sync_time),
            _gateway(c.gateway),
            str(c.exported_services),
            str(c.imported_services),
            c.error,
        )
    return table


def services_table(services: list[pb.ServiceStatus]) -> Table:
    table = Table(title="Global services", title_justify="left")
    for column in ("Service", "Exporters", "Endpoints ready/total", "Conflicts", "Last applied"):
        table.add_column(column)
    for s in services:
        exporters = ", ".join(e.cluster for e in s.exporters) or "-"
        endpoints = "\n".join(
            f"{e.cluster}: {e.ready_endpoints}/{e.total_endpoints}" for e in s.exporters
        )
        applied = "\n".join(f"{t.cluster}: {_when(t.last_applied_time)}" for t in s.targets)
        conflicts = f"[red]{len(s.conflicts)}[/]" if s.conflicts else "0"
        table.add_row(
            f"{s.key.namespace}/{s.key.name}",
            exporters,
            endpoints or "-",
            conflicts,
            applied or "never",
        )
    return table


def event_line(event: pb.Event) -> str:
    dropped = f" ({event.dropped_before} dropped before)" if event.dropped_before else ""
    return (
        f"{_when(event.time)} #{event.sequence} {event.op} {event.kind} "
        f"{event.service.namespace}/{event.name} in {event.cluster} "
        f"(service {event.service.namespace}/{event.service.name}){dropped}"
    )


def _unreachable(server: str, error: grpc.RpcError) -> str:
    return (
        f"cannot reach the meshfed status API at {server} ({error.code().name}: "
        f"{error.details()}).\nIs `meshfed federate` running? It listens on the address in "
        f"listen.grpc of its federation config (default {DEFAULT_SERVER}); point --server at it."
    )


def _print_status(
    console: Console, stub: Any, *, namespace: str, timeout: float, metadata: Metadata
) -> None:
    status: pb.GetStatusResponse = stub.GetStatus(
        pb.GetStatusRequest(), timeout=timeout, metadata=metadata
    )
    listed: pb.ListServicesResponse = stub.ListServices(
        pb.ListServicesRequest(namespace=namespace), timeout=timeout, metadata=metadata
    )
    ready = "[green]ready[/]" if status.ready else "[yellow]not ready[/]"
    console.print(
        f"federator {ready}: {len(status.clusters)} clusters, {status.services} global "
        f"services, {status.conflicts} conflicts, last applied {_when(status.last_applied_time)}"
    )
    election = status.leader_election
    if election.enabled:
        role = "[green]leader[/]" if election.leader else "standby"
        console.print(
            f"this replica ({election.identity}) is the {role}; leader: "
            f"{election.holder or 'none'} (lease transitions {election.transitions}, "
            f"renewed {_when(election.renew_time)})"
        )
    console.print(clusters_table(list(status.clusters)))
    console.print(services_table(list(listed.services)))
    conflicts = [(s.key, c) for s in listed.services for c in s.conflicts]
    for key, conflict in conflicts[:MAX_CONFLICT_LINES]:
        console.print(f"[red]conflict[/] {key.namespace}/{key.name}: {conflict.message}")
    if len(conflicts) > MAX_CONFLICT_LINES:
        console.print(f"... and {len(conflicts) - MAX_CONFLICT_LINES} more conflicts")


def _watch(console: Console, stub: Any, *, namespace: str, limit: int, metadata: Metadata) -> None:
    console.print("watching applied changes (Ctrl-C to stop)")
    stream = stub.WatchEvents(pb.WatchEventsRequest(namespace=namespace), metadata=metadata)
    seen = 0
    try:
        for event in stream:
            console.print(event_line(event), highlight=False, soft_wrap=True)
            seen += 1
            if limit and seen >= limit:
                break
    finally:
        stream.cancel()


def _read(path: Path | None, option: str) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        typer.echo(f"error: {option} {path}: {exc.strerror}", err=True)
        raise typer.Exit(2) from None


def _token(token_file: Path | None) -> str:
    raw = _read(token_file, "--token-file")
    token = raw.decode("utf-8", "replace") if raw is not None else os.environ.get(TOKEN_ENV, "")
    if token_file is not None and not token.strip():
        typer.echo(f"error: --token-file {token_file} is empty", err=True)
        raise typer.Exit(2)
    return token.strip()


def channel_for(
    server: str,
    *,
    ca: Path | None = None,
    cert: Path | None = None,
    key: Path | None = None,
    server_name: str = "",
) -> grpc.Channel:
    """A plaintext channel, or a TLS one when ``ca`` is given (mutual TLS with cert/key)."""
    if (cert is None) != (key is None):
        typer.echo("error: --cert and --key go together", err=True)
        raise typer.Exit(2)
    if ca is None:
        if cert is not None:
            typer.echo("error: --cert/--key need --ca (the CA that signed the server)", err=True)
            raise typer.Exit(2)
        return grpc.insecure_channel(server)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=_read(ca, "--ca"),
        private_key=_read(key, "--key"),
        certificate_chain=_read(cert, "--cert"),
    )
    options = [("grpc.ssl_target_name_override", server_name)] if server_name else []
    return grpc.secure_channel(server, credentials, options=options)


def status(  # noqa: PLR0917 - typer maps parameters to options
    server: Annotated[
        str,
        typer.Option(help="host:port of the federator's gRPC API (listen.grpc in its config)."),
    ] = DEFAULT_SERVER,
    watch: Annotated[
        bool, typer.Option("--watch", help="Then stream the changes the federator applies.")
    ] = False,
    namespace: Annotated[
        str, typer.Option(help="Only services (and events) in this namespace.")
    ] = "",
    limit: Annotated[
        int, typer.Option(help="With --watch: stop after this many events (0: never).", min=0)
    ] = 0,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each answer.")] = 10.0,
    ca: Annotated[
        Path | None, typer.Option(help="CA (PEM) that signed the server's certificate: use TLS.")
    ] = None,
    cert: Annotated[
        Path | None, typer.Option(help="Client certificate (PEM) for mutual TLS; needs --key.")
    ] = None,
    key: Annotated[Path | None, typer.Option(help="Private key (PEM) of --cert.")] = None,
    tls_server_name: Annotated[
        str, typer.Option(help="Name to verify in the server's certificate (default: host).")
    ] = "",
    token_file: Annotated[
        Path | None,
        typer.Option(help=f"File holding the API bearer token (default: ${TOKEN_ENV})."),
    ] = None,
) -> None:
    """Show the federation's clusters and global services from a running `meshfed federate`."""
    console = Console()
    token = _token(token_file)
    metadata = [("authorization", f"Bearer {token}")] if token else []
    channel = channel_for(server, ca=ca, cert=cert, key=key, server_name=tls_server_name)
    with channel:
        stub = pb_grpc.FederationServiceStub(channel)
        try:
            _print_status(console, stub, namespace=namespace, timeout=timeout, metadata=metadata)
            if watch:
                _watch(console, stub, namespace=namespace, limit=limit, metadata=metadata)
        except grpc.RpcError as error:
            if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                typer.echo(_unreachable(server, error), err=True)
            else:
                typer.echo(f"status API error: {error.code().name}: {error.details()}", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            return

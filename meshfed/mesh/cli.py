"""``meshfed mesh inspect``: what one cluster's istiod serves a sidecar, for one service.

Answers "what does cluster c3 actually see for reviews?" from the control plane itself: it
connects to that cluster's istiod as a sidecar of ``--namespace`` would (same node id and
metadata, the cluster's locality and network), takes CDS, EDS, LDS and RDS, and prints the
outbound clusters of the service with their endpoints (address, port, weight, locality,
priority), TLS mode and outlier detection. ``--context`` finds istiod through the sandbox's
state; ``--xds`` points at any istiod.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from google.protobuf.json_format import MessageToDict
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from meshfed.mesh import MeshExtraMissingError
from meshfed.sandbox import processes
from meshfed.sandbox.components import MissingBinaryError, find_istio
from meshfed.sandbox.layout import Topology, plan_layout

if TYPE_CHECKING:  # the Envoy API is the optional `mesh` extra: imported when a command runs
    from meshfed.mesh.node import SidecarIdentity
    from meshfed.mesh.views import ClusterView
    from meshfed.mesh.xds import Snapshot

app = typer.Typer(help="Look at what Istio's control plane serves.", no_args_is_help=True)
console = Console(stderr=True)


def _fail(message: str) -> typer.Exit:
    # escaped: messages hold brackets (``meshfed[mesh]``); one line, so they can be grepped
    console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    return typer.Exit(1)


def identity_from_sandbox(
    directory: Path, context: str, namespace: str
) -> tuple[str, SidecarIdentity]:
    """istiod's xDS address and a sidecar identity placed in cluster ``context``."""
    from meshfed.mesh.node import DEFAULT_ISTIO_VERSION, SidecarIdentity  # noqa: PLC0415

    state = processes.load_state(directory.resolve())
    if state is None:
        raise _fail(
            f"no sandbox in {directory}; start one with `meshfed sandbox up --istio` or pass --xds"
        )
    layout = plan_layout(
        directory=directory,
        clusters=state.clusters,
        topology=Topology(state.topology),
        base_port=state.base_port,
        istio=state.istio,
    )
    if not layout.istio:
        raise _fail(
            f"the sandbox in {directory} runs no istiod; add one with "
            f"`meshfed sandbox up --istio --dir {directory}`"
        )
    by_name = {c.name: c for c in layout.clusters}
    if context not in by_name:
        raise _fail(f"no cluster {context!r} in {directory}; clusters: {', '.join(by_name)}")
    c = by_name[context]
    try:
        version = find_istio().version
    except MissingBinaryError:
        version = DEFAULT_ISTIO_VERSION
    ident = SidecarIdentity(
        cluster=c.name,
        namespace=namespace,
        region=c.region,
        zone=c.zone,
        network=c.network,
        istio_version=version,
    )
    return f"127.0.0.1:{c.istiod.grpc}", ident


def _table(view: ClusterView) -> Table:
    from meshfed.mesh.views import describe  # noqa: PLC0415

    tls = view.tls.mode + (f" (SNI {view.tls.sni})" if view.tls.sni else "")
    table = Table(
        title=view.name,
        caption=f"{view.discovery}, TLS {tls}; {describe(view)[0].split('; ', 1)[1]}",
    )
    for col in ("endpoint", "weight", "locality", "priority", "health"):
        table.add_column(col)
    for e in view.endpoints:
        table.add_row(
            f"{e.address}:{e.port}",
            str(e.weight),
            e.locality or "-",
            str(e.priority),
            e.health,
        )
    return table


def _raw(snap: Snapshot, names: list[str]) -> dict[str, object]:
    def safe(msg: object) -> object:
        try:
            return MessageToDict(msg)  # type: ignore[arg-type]
        except TypeError:  # an Istio-only typed config the public protos do not describe
            return str(msg)

    return {
        "clusters": {n: safe(snap.clusters[n]) for n in names},
        "endpoints": {n: safe(snap.endpoints[n]) for n in names if n in snap.endpoints},
    }


@app.command()
def inspect(  # noqa: PLR0917 - typer maps parameters to options
    context: Annotated[str, typer.Option("--context", "-c", help="Sandbox cluster, e.g. c3.")] = "",
    service: Annotated[
        str,
        typer.Option(
            "--service", "-s", help="name.namespace (every host under it) or a full host."
        ),
    ] = "",
    namespace: Annotated[str, typer.Option(help="The sidecar's namespace.")] = "default",
    directory: Annotated[Path, typer.Option("--dir", help="The sandbox's directory.")] = Path(
        ".sandbox"
    ),
    xds: Annotated[
        str, typer.Option(help="istiod's plaintext xDS host:port (instead of --context).")
    ] = "",
    cluster_id: Annotated[str, typer.Option(help="CLUSTER_ID with --xds.")] = "Kubernetes",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable views.")] = False,
    raw: Annotated[
        bool, typer.Option(help="With --json: also Envoy's own JSON of each cluster.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each xDS response.")] = 10.0,
) -> None:
    """Print the outbound clusters istiod serves a sidecar for --service (all without it)."""
    try:  # the optional `mesh` extra; `meshfed mesh --help` works without it
        from meshfed.mesh.node import SidecarIdentity, sidecar_node  # noqa: PLC0415
        from meshfed.mesh.views import cluster_view, describe, matching  # noqa: PLC0415
        from meshfed.mesh.xds import XdsError, snapshot  # noqa: PLC0415
    except MeshExtraMissingError as err:
        raise _fail(str(err)) from err
    if xds:
        address, ident = xds, SidecarIdentity(cluster=context or cluster_id, namespace=namespace)
    elif context:
        address, ident = identity_from_sandbox(directory, context, namespace)
    else:
        raise _fail("pass --context (a sandbox cluster) or --xds host:port")
    with console.status(f"asking istiod at {address} as {ident.node_id}"):
        try:
            snap = snapshot(address=address, node=sidecar_node(ident), timeout=timeout)
        except XdsError as err:
            raise _fail(str(err)) from err
    names = (
        matching(snap.clusters, service)
        if service
        else sorted(n for n in snap.clusters if n.startswith("outbound|"))
    )
    if not names:
        raise _fail(
            f"istiod serves no outbound cluster for {service!r} to {ident.node_id} "
            f"({len(snap.clusters)} clusters in all); is it exported and federated?"
        )
    views = [cluster_view(snap.clusters[n], snap.endpoints.get(n)) for n in names]
    if as_json:
        doc: dict[str, object] = {
            "node": ident.node_id,
            "xds": address,
            "clusters": [v.to_dict() for v in views],
            "listeners": sorted(snap.listeners),
            "routes": sorted(snap.routes),
        }
        if raw:
            doc["raw"] = _raw(snap, names)
        typer.echo(json.dumps(doc, indent=2))
        return
    out = Console()
    header = f"istiod {address} -> {ident.node_id} (locality {ident.locality or '-'})"
    if not out.is_terminal:  # plain lines for pipes and logs: no wrapping, no box drawing
        typer.echo("\n".join([header, *(line for v in views for line in describe(v))]))
        return
    out.print(header)
    for view in views:
        out.print(_table(view))

"""``meshfed loadgen``: run the load generator (a TEST TOOL) against a sandbox or any istiod.

```
meshfed loadgen --sandbox /tmp/sb --cluster c1 --chain productpage,reviews,ratings \
  --headers end-user=jason --headers "" --rate 20 --seconds 60 --collector 127.0.0.1:9201
meshfed loadgen --cluster c1 --istiod c1=127.0.0.1:15010 --istiod c2=127.0.0.1:15110 ...
```

``--sandbox`` reads every cluster's istiod, locality and east-west gateway address from the
sandbox's state; ``--istiod NAME=HOST:PORT`` (repeatable) names them directly. Each
``--headers`` value is one header set (``name=value,name=value``; ``""`` for none); requests
cycle through the sets. Progress is shown while it runs; the summary is printed at the end.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from meshfed.loadgen.exporters import Endpoints
from meshfed.loadgen.generator import Hop, LoadGenerator, LoadSettings, LoadStats, Place

console = Console(stderr=True)


def parse_headers(value: str) -> tuple[tuple[str, str], ...]:
    """``"end-user=jason,x-a=b"`` -> pairs; ``""`` -> no headers."""
    pairs = []
    for part in filter(None, (p.strip() for p in value.split(","))):
        name, sep, val = part.partition("=")
        if not sep or not name.strip():
            raise typer.BadParameter(f"--headers {value!r}: write name=value[,name=value]")
        pairs.append((name.strip().lower(), val.strip()))
    return tuple(pairs)


def places_from_sandbox(directory: Path) -> tuple[tuple[Place, ...], dict[str, str]]:
    """Every sandbox cluster's istiod and locality, and gateway address -> cluster."""
    from meshfed.sandbox import processes  # noqa: PLC0415 (only with --sandbox)
    from meshfed.sandbox.layout import Topology, plan_layout  # noqa: PLC0415

    state = processes.load_state(directory.resolve())
    if state is None or not state.istio:
        raise typer.BadParameter(
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
    places = tuple(
        Place(c.name, f"127.0.0.1:{c.istiod.grpc}", c.region, c.zone, c.network)
        for c in layout.clusters
    )
    return places, {c.gateway_ip: c.name for c in layout.clusters}


def parse_istiods(values: list[str]) -> tuple[Place, ...]:
    out = []
    for v in values:
        name, sep, address = v.partition("=")
        if not sep or ":" not in address:
            raise typer.BadParameter(f"--istiod {v!r}: write NAME=HOST:PORT (istiod's xDS port)")
        out.append(Place(name, address))
    return tuple(out)


def loadgen(  # noqa: PLR0917 - typer maps parameters to options
    cluster: Annotated[str, typer.Option(help="The cluster the simulated clients run in.")],
    sandbox: Annotated[
        Path | None, typer.Option(help="A sandbox directory: istiods and localities from it.")
    ] = None,
    istiod: Annotated[
        list[str] | None, typer.Option(help="NAME=HOST:PORT of a cluster's istiod (repeatable).")
    ] = None,
    collector: Annotated[
        str, typer.Option(help="meshfed collect's HTTP address (remote_write).")
    ] = "127.0.0.1:9201",
    otlp_http: Annotated[str, typer.Option(help="Its OTLP/HTTP address.")] = "127.0.0.1:4318",
    forward: Annotated[str, typer.Option(help="Its Fluentd Forward address.")] = "127.0.0.1:24224",
    chain: Annotated[
        str, typer.Option(help="Services called in turn, comma-separated.")
    ] = "productpage,reviews,ratings",
    namespace: Annotated[str, typer.Option()] = "default",
    host_suffix: Annotated[str, typer.Option(help="Hosts are NAME.NS.svc.SUFFIX.")] = (
        "clusterset.local"
    ),
    port: Annotated[int, typer.Option(help="The services' HTTP port.")] = 9080,
    rate: Annotated[float, typer.Option(help="Requests per second.")] = 10.0,
    seconds: Annotated[float, typer.Option(help="How long to run.")] = 30.0,
    max_requests: Annotated[int, typer.Option(help="Upper bound on requests.")] = 100_000,
    headers: Annotated[
        list[str] | None, typer.Option(help='A header set, "name=value,..." (repeatable).')
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the outcome RNG.")] = 1,
    workload: Annotated[
        str, typer.Option(help="source_workload of the simulated clients.")
    ] = "loadgen",
) -> None:
    """Simulate client requests from CLUSTER's sidecar view and write their telemetry."""
    gateways: dict[str, str] = {}
    places: tuple[Place, ...] = ()
    if sandbox is not None:
        places, gateways = places_from_sandbox(sandbox)
    places += parse_istiods(istiod or [])
    hops = tuple(
        Hop(name, f"{name}.{namespace}.svc.{host_suffix}", port, namespace)
        for name in filter(None, (c.strip() for c in chain.split(",")))
    )
    settings = LoadSettings(
        origin=cluster,
        places=places,
        chain=hops,
        source_workload=workload,
        namespace=namespace,
        rate=rate,
        seconds=seconds,
        max_requests=max_requests,
        seed=seed,
        header_sets=tuple(parse_headers(h) for h in headers) if headers else ((),),
        gateways=gateways,
    )
    try:
        settings.validate()
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err
    stats = asyncio.run(_run(settings, Endpoints(collector, otlp_http, forward)))
    console.print(
        f"{stats.requests} requests, status {dict(sorted(stats.by_status.items()))}, "
        f"{stats.flushes} flushes, {stats.route_versions} xDS pushes applied"
    )
    for problem in stats.export_errors[:5]:
        console.print(f"[yellow]export error:[/yellow] {problem}")
    if stats.export_errors:
        raise typer.Exit(1)


async def _run(settings: LoadSettings, endpoints: Endpoints) -> LoadStats:
    gen = LoadGenerator(settings, endpoints)
    try:
        await gen.start()
    except RuntimeError as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(1) from err
    total = min(settings.max_requests, int(settings.rate * settings.seconds) + 1)
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("simulated requests", total=total)
            waiter = asyncio.ensure_future(gen.wait())
            while not waiter.done():
                progress.update(task, completed=gen.stats.requests)
                await asyncio.wait({waiter}, timeout=0.5)
            progress.update(task, completed=gen.stats.requests)
        return waiter.result()
    finally:
        await gen.shutdown()

"""``meshfed certs``: thin CLI over the trust core (parses, calls, prints; never a key).

``init`` makes the root, ``issue`` the clusters' intermediates as files, ``apply`` writes
each member cluster's ``cacerts`` Secret (issuing what is missing), ``status`` shows
issuers, expiry and whether all clusters chain to one root (``--prometheus`` for the
expiry metric), ``rotate`` replaces the root in phases (docs/security.md has the runbook).
Every input is checked before anything is written; errors name the field and exit 2.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from federator.errors import FederatorError
from federator.kube.client import KubeClient
from meshfed.trust import rotation, writer
from meshfed.trust.bundle import PluginCa, check_plugin_ca, fingerprint, plugin_ca
from meshfed.trust.errors import CertsError
from meshfed.trust.issue import (
    DEFAULT_TRUST_DOMAIN,
    CaSpec,
    IssuedCa,
    KeyType,
    check_cluster_name,
    issue_intermediate,
    issue_root,
    load_certs,
    trust_domain_of,
)
from meshfed.trust.status import ClusterCertStatus, cluster_status, prometheus_text, same_root
from meshfed.trust.store import TrustStore, write_file

app = typer.Typer(
    help="The mesh's CA certificates: one shared root, an intermediate CA per cluster, "
    "in Istio's plug-in CA format (cacerts).",
    no_args_is_help=True,
)
console = Console(stderr=True)

DirOption = Annotated[
    Path, typer.Option("--dir", help="Directory of the certificates (keys are 0600).")
]
KeyTypeOption = Annotated[KeyType, typer.Option(help="Key algorithm of new CAs.")]
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="Federation config: its member clusters get cacerts."),
]
ClustersOption = Annotated[
    list[str] | None, typer.Option("--cluster", help="Only these clusters (repeatable).")
]
IntermediateDays = Annotated[
    int, typer.Option("--validity-days", help="Lifetime of new intermediate CAs, in days.")
]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@contextlib.contextmanager
def _refusals() -> Iterator[None]:
    """A :class:`CertsError` ends the command with its message and exit code 2 (nothing was
    written); a cluster that fails to answer, with exit code 1."""
    try:
        yield
    except CertsError as err:
        console.print(f"[red]refused[/red] {escape(str(err))}", highlight=False)
        raise typer.Exit(2) from None
    except FederatorError as err:  # a cluster could not be read or written
        console.print(
            f"[red]failed[/red] {escape(str(err))}\nRerun once the cluster answers; if it "
            "failed while applying Secrets, the files are already written and "
            "`meshfed certs apply --dir ... --config ...` pushes them as they are.",
            highlight=False,
        )
        raise typer.Exit(1) from None


def _describe(what: str, ca: IssuedCa) -> None:
    console.print(
        f"{what}: {ca.cert.subject.rfc4514_string()}, expires "
        f"{ca.cert.not_valid_after_utc:%Y-%m-%d}, sha256 {fingerprint(ca.cert)[:16]}",
        highlight=False,
        markup=False,
    )


@app.command()
def init(
    directory: DirOption,
    trust_domain: Annotated[str, typer.Option(help="The mesh's trust domain.")] = (
        DEFAULT_TRUST_DOMAIN
    ),
    key_type: KeyTypeOption = KeyType.ECDSA_P256,
    validity_days: Annotated[
        int, typer.Option("--validity-days", help="Lifetime of the root, in days.")
    ] = 3650,
) -> None:
    """Create the mesh's root CA in --dir (refused if one exists: use `rotate`)."""
    store = TrustStore(directory)
    with _refusals():
        spec = CaSpec(trust_domain=trust_domain, key_type=key_type, validity_days=validity_days)
        spec.validate()
        if store.has_root():
            raise CertsError("--dir", f"{directory} already has a root CA; use `rotate`")
        root = issue_root(spec, now=_now())
        store.write_root(root)
    _describe("root CA", root)


def _spec(store: TrustStore, key_type: KeyType, days: int) -> CaSpec:
    domain = trust_domain_of(store.root().cert) or DEFAULT_TRUST_DOMAIN
    return CaSpec(trust_domain=domain, key_type=key_type, validity_days=days)


def _issue(store: TrustStore, name: str, spec: CaSpec) -> PluginCa:
    if store.next_root() is not None:
        raise CertsError(
            "--cluster", "a root rotation is in progress: finish it before adding clusters"
        )
    root = store.root()
    ca = issue_intermediate(root=root, cluster=name, spec=spec, now=_now())
    return plugin_ca(ca, issuer=root.cert, roots=(root.cert,))


@app.command()
def issue(
    directory: DirOption,
    cluster: Annotated[list[str], typer.Option("--cluster", help="Cluster name (repeatable).")],
    key_type: KeyTypeOption = KeyType.ECDSA_P256,
    validity_days: IntermediateDays = 365,
    force: Annotated[bool, typer.Option(help="Re-issue clusters that have one.")] = False,
) -> None:
    """Issue each cluster's intermediate CA as files (for users who keep keys in a vault)."""
    store = TrustStore(directory)
    with _refusals():
        for name in cluster:
            check_cluster_name(name)
        spec = _spec(store, key_type, validity_days)
        spec.validate()
        issued = {
            name: _issue(store, name, spec)
            for name in cluster
            if force or store.read_cluster(name) is None
        }
    for name, ca in issued.items():
        store.write_cluster(name, ca)
        _describe(f"{name} intermediate CA", ca.ca)
    for name in sorted(set(cluster) - set(issued)):
        console.print(f"{name}: kept its intermediate CA (--force re-issues)", markup=False)


async def _check_clusters(
    clients: Mapping[str, KubeClient], plans: Mapping[str, PluginCa], domain: str | None
) -> None:
    """Cluster-side checks before any write: istiod's trust domain matches the root's."""
    for name, client in clients.items():
        if name not in plans:
            raise CertsError("--cluster", f"{name} has no cacerts in the directory")
        found = await writer.mesh_trust_domain(client)
        if found is not None and domain is not None and found != domain:
            raise CertsError(
                f"clusters[{name}].trustDomain",
                f"istiod's mesh config says {found!r}, the root is for {domain!r}",
            )


async def _push(
    config: Path,
    only: list[str],
    plans: Mapping[str, PluginCa],
    domain: str | None,
    before_write: Callable[[], None],
) -> None:
    """Check every cluster, then ``before_write`` (the files), then apply each Secret."""
    clients = await writer.open_clients(str(config), only)
    try:
        await _check_clusters(clients, plans, domain)
        before_write()
        with Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
            console=console, transient=False,
        ) as bar:  # fmt: skip
            task = bar.add_task("applying cacerts", total=len(clients))
            for name, client in clients.items():
                bar.update(task, description=f"applying istio-system/cacerts in {name}")
                await writer.apply_cacerts(client, plans[name].files())
                bar.advance(task)
            bar.update(task, description=f"applied cacerts in {len(clients)} cluster(s)")
    finally:
        for client in clients.values():
            await client.aclose()


@app.command()
def apply(
    directory: DirOption,
    config: Annotated[Path, typer.Option("--config", help="Federation config (members).")],
    cluster: ClustersOption = None,
    key_type: KeyTypeOption = KeyType.ECDSA_P256,
    validity_days: IntermediateDays = 365,
) -> None:
    """Write every member cluster's istio-system/cacerts Secret (server-side apply), issuing
    the intermediates that are missing. Everything is checked before anything is written."""
    store = TrustStore(directory)
    only = cluster or []
    with _refusals():
        root = store.root()
        spec = _spec(store, key_type, validity_days)
        names = only or writer.member_names(str(config))
        plans: dict[str, PluginCa] = {}
        fresh: set[str] = set()
        anchors: dict[str, str] = {}
        for name in names:
            check_cluster_name(name, field=f"clusters[{name}].name")
            found = store.read_cluster(name)
            if found is None:
                found = _issue(store, name, spec)
                fresh.add(name)
            anchors[name] = fingerprint(
                check_plugin_ca(found, now=_now(), where=f"clusters[{name}].")
            )
            plans[name] = found
        if len(set(anchors.values())) > 1:
            raise CertsError("--dir", f"the clusters chain to different roots: {anchors}")

        def save() -> None:
            for name in sorted(fresh):
                store.write_cluster(name, plans[name])

        asyncio.run(_push(config, list(names), plans, trust_domain_of(root.cert), save))


async def _live(config: Path, only: list[str]) -> dict[str, tuple[PluginCa | None, bool | None]]:
    """Each cluster's cacerts Secret and whether istiod publishes the same root bundle."""
    out: dict[str, tuple[PluginCa | None, bool | None]] = {}
    clients = await writer.open_clients(str(config), only)
    try:
        for name, client in clients.items():
            files = await writer.read_cacerts(client)
            ca = None if files is None else PluginCa.from_files(files, where=f"{name}: ")
            published = await writer.published_roots(client)
            same: bool | None = None
            if ca is not None and published is not None:
                shown = load_certs(published, field=f"{name}: istio-ca-root-cert")
                same = {fingerprint(c) for c in shown} == {fingerprint(c) for c in ca.roots}
            out[name] = (ca, same)
    finally:
        for client in clients.values():
            await client.aclose()
    return out


def _table(rows: list[ClusterCertStatus], published: Mapping[str, bool | None]) -> Table:
    table = Table(title="mesh CA certificates")
    for column in ("cluster", "issuer", "not after", "days left", "chains to root",
                   "trust bundle", "istiod publishes it"):  # fmt: skip
        table.add_column(column)
    mark = {True: "[green]✓[/]", False: "[red]✗[/]", None: "-"}
    for r in rows:
        table.add_row(
            escape(r.cluster), escape(r.issuer),
            f"{r.not_after:%Y-%m-%d %H:%M}" if r.not_after else "-",
            f"{r.days_left:.0f}",
            mark[r.chains] + (f" {escape(r.problem)}" if r.problem else ""),
            escape(", ".join(r.bundle)), mark[published.get(r.cluster)],
        )  # fmt: skip
    return table


@app.command()
def status(
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Read the files in this directory.")
    ] = None,
    config: ConfigOption = None,
    cluster: ClustersOption = None,
    prometheus: Annotated[
        str | None,
        typer.Option(help="Also write the expiry metrics as Prometheus text here ('-': stdout)."),
    ] = None,
) -> None:
    """Issuer, expiry and chain of every cluster's CA (live Secrets with --config, else the
    files in --dir). Exits 1 unless every cluster chains to one and the same root."""
    only = cluster or []
    with _refusals():
        if config is not None:
            live = asyncio.run(_live(config, only))
            found = {n: ca for n, (ca, _) in live.items()}
            published = {n: p for n, (_, p) in live.items()}
        elif directory is not None:
            store = TrustStore(directory)
            found = {n: store.read_cluster(n) for n in (only or store.cluster_names())}
            published = {}
        else:
            raise CertsError("--config", "give --config (clusters) or --dir (files)")
    now = _now()
    rows = [cluster_status(name, ca, now=now) for name, ca in sorted(found.items())]
    Console().print(_table(rows, published))
    one = same_root(rows)
    console.print(
        "every cluster chains to the same root" if one else "[red]clusters do NOT share one root",
        highlight=False,
    )
    if prometheus == "-":
        sys.stdout.write(prometheus_text(rows).decode())
    elif prometheus:
        write_file(Path(prometheus), prometheus_text(rows))
    if not one:
        raise typer.Exit(1)


@app.command()
def rotate(  # noqa: PLR0917 - typer maps parameters to options
    directory: DirOption,
    phase: Annotated[rotation.Phase, typer.Option(help="trust | bundle | finish")],
    config: ConfigOption = None,
    key_type: KeyTypeOption = KeyType.ECDSA_P256,
    root_validity_days: Annotated[int, typer.Option(help="Lifetime of the new root.")] = 3650,
    validity_days: IntermediateDays = 365,
) -> None:
    """Replace the root in phases (docs/security.md): `trust` adds the new root to every
    bundle, `bundle` also re-issues the intermediates under it, `finish` drops the old root.
    Writes the files, and with --config every member cluster's cacerts."""
    store = TrustStore(directory)
    now = _now()
    with _refusals():
        old = store.root()
        domain = trust_domain_of(old.cert) or DEFAULT_TRUST_DOMAIN
        new = store.next_root()
        if new is None and phase is rotation.Phase.FINISH:
            raise CertsError("--phase", "no rotation in progress (start with trust or bundle)")
        if new is None:
            spec = CaSpec(trust_domain=domain, key_type=key_type, validity_days=root_validity_days)
            new = issue_root(spec, now=now)
        current = {n: store.read_cluster(n) for n in store.cluster_names()}
        present = {n: ca for n, ca in current.items() if ca is not None}
        if not present:
            raise CertsError("--dir", "no cluster has cacerts yet: run `meshfed certs issue`")
        spec = CaSpec(trust_domain=domain, key_type=key_type, validity_days=validity_days)
        plans = rotation.plan(phase, present, old_root=old.cert, new_root=new, spec=spec, now=now)
        for name, ca in plans.items():
            check_plugin_ca(ca, now=now, where=f"clusters[{name}].")
        fresh = new

        def save() -> None:
            store.write_next_root(fresh)
            for name, ca in plans.items():
                store.write_cluster(name, ca)
            if phase is rotation.Phase.FINISH:
                store.promote_next_root()

        if config is not None:
            members = sorted(set(plans) & set(writer.member_names(str(config))))
            asyncio.run(_push(config, members, plans, domain, save))
        else:
            save()
    _describe(f"rotation phase {phase.value} done; new root", new)

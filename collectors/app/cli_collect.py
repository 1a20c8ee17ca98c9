"""``meshfed collect``: run every enabled receiver and the query API in one process.

Thin: turns flags into overrides of the YAML file (shortcut flags for the common fields,
``--set section.field=value`` for any field), validates the whole configuration — a bad
value exits with status 2 and the fix in the message — and runs the collector until
SIGTERM/SIGINT.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from collectors._core.errors import CollectorError, ConfigError
from collectors._kits.event_loop import LOOPS, loop_factory, run_on
from collectors.app.collector import run
from collectors.app.config import RECEIVERS, CollectorConfig, load

_Opt = typer.Option


def collect(  # noqa: PLR0917 - typer maps parameters to options
    config: Annotated[Path | None, _Opt(help="YAML file (docs/collectors.md).")] = None,
    cluster: Annotated[str | None, _Opt(help="resource.cluster: label added to all.")] = None,
    region: Annotated[str | None, _Opt(help="resource.region: label added to all.")] = None,
    label: Annotated[
        list[str] | None, _Opt(help="resource.static_labels entry name=value (repeatable).")
    ] = None,
    http: Annotated[str | None, _Opt(help="http.listen (query API, remote_write).")] = None,
    http_token_file: Annotated[
        Path | None, _Opt(help="http.bearer_token_file: token for the HTTP port.")
    ] = None,
    http_tls_cert: Annotated[Path | None, _Opt(help="http.tls_cert_file (HTTPS).")] = None,
    http_tls_key: Annotated[Path | None, _Opt(help="http.tls_key_file.")] = None,
    http_client_ca: Annotated[
        Path | None, _Opt(help="http.tls_client_ca_file (mutual TLS).")
    ] = None,
    statsd: Annotated[
        str | None, _Opt(help="statsd.udp_listen and statsd.tcp_listen (same port).")
    ] = None,
    statsd_flush_interval: Annotated[
        float | None,
        _Opt(
            help="statsd.flush_interval_s: seconds between StatsD flushes (default 10; the"
            " reference daemon's flushInterval, in seconds)."
        ),
    ] = None,
    statsd_percentiles: Annotated[
        str | None,
        _Opt(
            help="statsd.percentiles: timer percentiles, comma separated, e.g. 90,99"
            " (default 90; a negative one, e.g. -10, is the lowest 10 %)."
        ),
    ] = None,
    forward: Annotated[str | None, _Opt(help="forward.listen (Fluentd Forward).")] = None,
    otlp_grpc: Annotated[str | None, _Opt(help="otlp.grpc_listen.")] = None,
    otlp_http: Annotated[str | None, _Opt(help="otlp.http_listen.")] = None,
    redis_url: Annotated[str | None, _Opt(help="store.redis.url; default: embedded.")] = None,
    data_dir: Annotated[
        Path | None, _Opt(help="Embedded Redis data: sets store.redis.data_dir to DIR/redis.")
    ] = None,
    memory_limit_mib: Annotated[
        int | None, _Opt(help="pipeline.memory.limit_mib (RSS limit, 0 = off).")
    ] = None,
    remote_write_token_file: Annotated[
        Path | None, _Opt(help="remote_write.bearer_token_file.")
    ] = None,
    pull: Annotated[
        list[str] | None, _Opt(help="pull target cluster=URL (repeatable; all series).")
    ] = None,
    disable: Annotated[
        list[str] | None, _Opt(help=f"Receiver to disable: {', '.join(RECEIVERS)}.")
    ] = None,
    set_: Annotated[
        list[str] | None, _Opt("--set", help="Any field: section.field=value (repeatable).")
    ] = None,
    check: Annotated[bool, _Opt(help="Validate the configuration and exit.")] = False,
    log_level: Annotated[str, _Opt(help="debug, info, warning or error.")] = "info",
    loop: Annotated[
        str,
        _Opt(
            help=f"Event loop: {', '.join(LOOPS)} (auto: uvloop where installed, as uvicorn's"
            " --loop auto)."
        ),
    ] = "auto",
) -> None:
    """Run the enabled receivers, the pipeline and the store's query API."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    try:
        overrides = _overrides(
            cluster=cluster,
            region=region,
            labels=label or [],
            http=http,
            statsd=statsd,
            statsd_flush_interval=statsd_flush_interval,
            statsd_percentiles=statsd_percentiles,
            forward=forward,
            otlp_grpc=otlp_grpc,
            otlp_http=otlp_http,
            redis_url=redis_url,
            data_dir=data_dir,
            memory_limit_mib=memory_limit_mib,
            remote_write_token_file=remote_write_token_file,
            pull=pull or [],
            disable=disable or [],
        )
        for name, path in (
            ("http.bearer_token_file", http_token_file),
            ("http.tls_cert_file", http_tls_cert),
            ("http.tls_key_file", http_tls_key),
            ("http.tls_client_ca_file", http_client_ca),
        ):
            if path is not None:
                overrides[name] = str(path)
        settings: CollectorConfig = load(config, overrides=overrides, assignments=set_ or [])
        factory = loop_factory(loop)
    except ConfigError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    if check:
        typer.echo("configuration is valid")
        return
    try:
        run_on(lambda: run(settings), factory)
    except CollectorError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from e


def _overrides(
    *,
    cluster: str | None,
    region: str | None,
    labels: list[str],
    http: str | None,
    statsd: str | None,
    statsd_flush_interval: float | None,
    statsd_percentiles: str | None,
    forward: str | None,
    otlp_grpc: str | None,
    otlp_http: str | None,
    redis_url: str | None,
    data_dir: Path | None,
    memory_limit_mib: int | None,
    remote_write_token_file: Path | None,
    pull: list[str],
    disable: list[str],
) -> dict[str, Any]:
    """Shortcut flags as ``section.field`` assignments (``None`` = not given)."""
    out: dict[str, Any] = {
        "resource.cluster": cluster,
        "resource.region": region,
        "http.listen": http,
        "statsd.udp_listen": statsd,
        "statsd.tcp_listen": statsd,
        "statsd.flush_interval_s": statsd_flush_interval,
        "statsd.percentiles": (
            None if statsd_percentiles is None else _percentiles(statsd_percentiles)
        ),
        "forward.listen": forward,
        "otlp.grpc_listen": otlp_grpc,
        "otlp.http_listen": otlp_http,
        "store.redis.url": redis_url,
        "store.redis.data_dir": None if data_dir is None else str(data_dir / "redis"),
        "pipeline.memory.limit_mib": memory_limit_mib,
        "remote_write.bearer_token_file": (
            None if remote_write_token_file is None else str(remote_write_token_file)
        ),
    }
    out = {k: v for k, v in out.items() if v is not None}
    for item in labels:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ConfigError(f"--label {item!r} must look like name=value")
        out[f"resource.static_labels.{name}"] = value
    targets = []
    for item in pull:
        name, sep, url = item.partition("=")
        if not sep or not name or not url:
            raise ConfigError(f"--pull {item!r} must look like cluster=http://prometheus:9090")
        targets.append({"cluster": name, "url": url})
    if targets:
        out["pull.targets"] = targets
    for name in disable:
        if name not in RECEIVERS:
            raise ConfigError(f"--disable {name!r}: known receivers are {', '.join(RECEIVERS)}")
        out[f"{name}.enabled"] = False
    return out


def _percentiles(text: str) -> list[float]:
    """``--statsd-percentiles 90,99.5`` -> ``[90.0, 99.5]`` (ranges are checked by the
    settings' ``validate()``, like a value from the file)."""
    values = []
    for item in text.split(","):
        try:
            values.append(float(item))
        except ValueError:
            raise ConfigError(
                f"--statsd-percentiles {text!r}: {item.strip()!r} is not a number;"
                " write numbers separated by commas, e.g. --statsd-percentiles 90,99"
            ) from None
    return values

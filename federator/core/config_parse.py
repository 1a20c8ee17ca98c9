"""``load_config(path)``: ``federation.yaml`` -> a validated ``FederationConfig``, with
field-path error messages.

Kept apart from ``federator.core.config`` so the settings module reads as a list of documented
fields; this module depends on it, not the reverse. Parsing is strict: an unknown key is an
error (a misspelt ``regoin`` must not silently become the default), and every type error names
the YAML path and the expected type.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from federator.core.config import (
    ClusterSettings,
    FailoverSettings,
    FederationConfig,
    GatewayProbeSettings,
    GatewaySettings,
    KubeconfigFile,
    KubeconfigSecret,
    LeaderElectionSettings,
    ListenSettings,
    OutlierDetectionSettings,
)
from federator.core.config_checks import Fields as _Fields
from federator.core.config_drills import parse_drills
from federator.core.config_policy import TrustSettings
from federator.core.config_policy_parse import parse_access, parse_egress, strings
from federator.core.config_security import parse_api_security, parse_http_security
from federator.core.model import ClusterId, Topology
from federator.errors import ConfigError

API_VERSION = "meshfed.io/v1alpha1"
KIND = "FederationConfig"
_MAX_BYTES = 1 << 20


def read_document(path: Path) -> Any:
    """The parsed YAML of ``path`` (at most 1 MiB); ``ConfigError`` if unreadable or invalid."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    if len(data) > _MAX_BYTES:
        raise ConfigError(f"config file {path} is larger than 1 MiB: is it the right file?")
    try:
        return yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc


def _duration_seconds(value: Any, where: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
        for unit in ("ms", "s", "m", "h"):
            number = value[: -len(unit)]
            if value.endswith(unit) and number.replace(".", "", 1).isdigit():
                return float(number) * units[unit]
    raise ConfigError(f'{where} "{value}" is not a duration: write e.g. "300s", "5m" or 300')


def _string_map(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ConfigError(f"{where} must be a mapping of strings to strings")
    return dict(value)


def _gateway(value: Any, where: str) -> GatewaySettings:
    if value is None:
        return GatewaySettings()
    f = _Fields(value, where)
    default = GatewaySettings()
    selector = f.get("selector")
    gw = GatewaySettings(
        namespace=f.str_("namespace", default.namespace),
        selector=default.selector
        if selector is None
        else _string_map(selector, f.path("selector")),
        address=f.opt_str("address"),
    )
    f.finish()
    return gw


def _cluster(value: Any, where: str, base_dir: Path) -> ClusterSettings:
    f = _Fields(value, where)
    kubeconfig: KubeconfigFile | None = None
    secret: KubeconfigSecret | None = None
    if (raw := f.get("kubeconfig")) is not None:
        k = _Fields(raw, f.path("kubeconfig"))
        path = k.str_("path", "")
        if path and not Path(path).is_absolute():
            path = str(base_dir / path)
        kubeconfig = KubeconfigFile(path=path, context=k.opt_str("context"))
        k.finish()
    if (raw := f.get("secret")) is not None:
        s = _Fields(raw, f.path("secret"))
        secret = KubeconfigSecret(name=s.str_("name", ""), key=s.str_("key", "kubeconfig"))
        s.finish()
    cluster = ClusterSettings(
        name=ClusterId(f.str_("name", "")),
        kubeconfig=kubeconfig,
        secret=secret,
        network=f.str_("network", ""),
        region=f.str_("region", ""),
        zone=f.str_("zone", ""),
        east_west_gateway=_gateway(f.get("eastWestGateway"), f.path("eastWestGateway")),
        trust_domain=f.str_("trustDomain", ""),
    )
    f.finish()
    return cluster


def _bool(f: _Fields, key: str, default: bool) -> bool:
    v = f.get(key)
    if v is None:
        return default
    if not isinstance(v, bool):
        raise ConfigError(f"{f.path(key)} must be true or false, got {v!r}")
    return v


def _seconds(f: _Fields, key: str, default: float) -> float:
    v = f.get(key)
    return default if v is None else _duration_seconds(v, f.path(key))


def _leader_election(value: Any) -> LeaderElectionSettings:
    d = LeaderElectionSettings()
    if value is None:
        return d
    f = _Fields(value, "leaderElection")
    out = LeaderElectionSettings(
        enabled=_bool(f, "enabled", d.enabled),
        lease_name=f.str_("leaseName", d.lease_name),
        lease_duration_seconds=_seconds(f, "leaseDuration", d.lease_duration_seconds),
        renew_deadline_seconds=_seconds(f, "renewDeadline", d.renew_deadline_seconds),
        retry_period_seconds=_seconds(f, "retryPeriod", d.retry_period_seconds),
    )
    f.finish()
    return out


def _gateway_probe(value: Any) -> GatewayProbeSettings:
    d = GatewayProbeSettings()
    if value is None:
        return d
    f = _Fields(value, "gatewayProbe")
    out = GatewayProbeSettings(
        enabled=_bool(f, "enabled", d.enabled),
        interval_seconds=_seconds(f, "interval", d.interval_seconds),
        timeout_seconds=_seconds(f, "timeout", d.timeout_seconds),
        failure_threshold=f.int_("failureThreshold", d.failure_threshold),
        port=f.int_("port", d.port),
        tls=_bool(f, "tls", d.tls),
    )
    f.finish()
    return out


def _topology(value: str, where: str) -> Topology:
    try:
        return Topology(value)
    except ValueError:
        raise ConfigError(f'{where} "{value}" is not a topology: use "gateway" or "vpn"') from None


def parse_document(doc: Any, *, base_dir: Path) -> FederationConfig:
    """Build a (not yet validated) ``FederationConfig`` from a parsed YAML document."""
    if doc is None:
        raise ConfigError("the config file is empty: see docs/configuration.md for an example")
    f = _Fields(doc, "")
    if (api := f.str_("apiVersion", API_VERSION)) != API_VERSION:
        raise ConfigError(f'apiVersion "{api}" is not supported: use "{API_VERSION}"')
    if (kind := f.str_("kind", KIND)) != KIND:
        raise ConfigError(f'kind "{kind}" is not supported: use "{KIND}"')
    defaults = FederationConfig()
    raw_clusters = f.get("clusters")
    if raw_clusters is None:
        raw_clusters = []
    if not isinstance(raw_clusters, list):
        raise ConfigError("clusters must be a list of clusters")
    clusters = tuple(_cluster(c, f"clusters[{i}]", base_dir) for i, c in enumerate(raw_clusters))

    failover = FailoverSettings()
    if (raw := f.get("failover")) is not None:
        fo = _Fields(raw, "failover")
        regions = fo.get("regions") or []
        if not isinstance(regions, list) or not all(isinstance(r, str) for r in regions):
            raise ConfigError("failover.regions must be a list of region names")
        failover = FailoverSettings(regions=tuple(regions))
        fo.finish()

    outlier = OutlierDetectionSettings()
    if (raw := f.get("outlierDetection")) is not None:
        od = _Fields(raw, "outlierDetection")
        outlier = OutlierDetectionSettings(
            consecutive_5xx_errors=od.int_("consecutive5xxErrors", outlier.consecutive_5xx_errors),
            interval=od.str_("interval", outlier.interval),
            base_ejection_time=od.str_("baseEjectionTime", outlier.base_ejection_time),
            max_ejection_percent=od.int_("maxEjectionPercent", outlier.max_ejection_percent),
        )
        od.finish()

    listen = ListenSettings()
    if (raw := f.get("listen")) is not None:
        ls = _Fields(raw, "listen")
        listen = ListenSettings(
            http=ls.str_("http", listen.http), grpc=ls.str_("grpc", listen.grpc)
        )
        ls.finish()

    resync = f.get("resyncPeriod")
    config = FederationConfig(
        leader_election=_leader_election(f.get("leaderElection")),
        gateway_probe=_gateway_probe(f.get("gatewayProbe")),
        clusters=clusters,
        topology=_topology(f.str_("topology", defaults.topology.value), "topology"),
        host_suffix=f.str_("hostSuffix", defaults.host_suffix),
        namespace=f.str_("namespace", defaults.namespace),
        resync_period_seconds=defaults.resync_period_seconds
        if resync is None
        else _duration_seconds(resync, "resyncPeriod"),
        failover=failover,
        outlier_detection=outlier,
        listen=listen,
        api=parse_api_security(f.get("api"), base_dir=base_dir),
        http=parse_http_security(f.get("http"), base_dir=base_dir),
        trust=TrustSettings(
            trust_domain=f.str_("trustDomain", TrustSettings().trust_domain),
            aliases=strings(f, "trustDomainAliases"),
        ),
        egress=parse_egress(f.get("egress")),
        access=parse_access(f.get("access")),
        drills=parse_drills(f.get("drills"), base_dir=base_dir),
    )
    f.finish()
    return config


def load_config(path: str | Path) -> FederationConfig:
    """Read, parse and validate a federation config file.

    Raises ``ConfigError`` if the file cannot be read, is not YAML, has an unknown or
    mistyped field, or fails ``FederationConfig.validate()``.
    """
    base = Path(path)
    config = parse_document(read_document(base), base_dir=base.parent)
    config.validate()
    return config

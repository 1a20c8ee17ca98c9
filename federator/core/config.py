"""The federator's settings: grouped, frozen, documented, and validated at start-up.

The settings below and ``FederationConfig.validate()``; any problem raises ``ConfigError``
with a message that names the field by its YAML path (``clusters[2].name``) and says the fix,
so a bad config stops the process before it touches a cluster instead of half-working.
Reading ``federation.yaml`` (format: docs/configuration.md) is
``federator.core.config_parse.load_config``: parsing depends on these settings, never the other
way round.

Every field has a default and a docstring; docs/configuration.md mirrors them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from federator.core.config_checks import DNS_LABEL, split_host_port
from federator.core.config_checks import check_address as _check_address
from federator.core.config_checks import check_dns_label as _check_dns_label
from federator.core.config_checks import check_listen as _check_listen
from federator.core.config_checks import check_subdomain as _check_subdomain
from federator.core.config_drills import DrillSettings
from federator.core.config_policy import (
    EgressSettings,
    ServiceAccess,
    TrustSettings,
    validate_policy,
)
from federator.core.config_security import ApiSecuritySettings, HttpSecuritySettings
from federator.core.model import ClusterId, Topology
from federator.errors import ConfigError

_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_DURATION = re.compile(r"^[0-9]+(ms|s|m|h)$")


@dataclass(frozen=True, slots=True)
class KubeconfigFile:
    """A kubeconfig file on the federator's host (the operator's own file)."""

    path: str = ""
    """Path of the kubeconfig file. Relative paths are relative to the config file."""
    context: str | None = None
    """Context to use; the file's current-context if unset."""


@dataclass(frozen=True, slots=True)
class KubeconfigSecret:
    """A Secret in the federator's namespace holding a self-contained kubeconfig.

    The Secret must carry the label ``meshfed.io/cluster: <cluster name>``; the kube layer
    refuses a Secret without it, so a config typo cannot point a cluster at an unrelated Secret.
    """

    name: str = ""
    """Name of the Secret (in ``FederationConfig.namespace``)."""
    key: str = "kubeconfig"
    """Key in the Secret's data that holds the kubeconfig."""


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """Where a cluster's east-west gateway is (gateway topology)."""

    namespace: str = "istio-system"
    """Namespace of the east-west gateway Service."""
    selector: Mapping[str, str] = field(default_factory=lambda: {"istio": "eastwestgateway"})
    """Labels selecting the east-west gateway Service (its LoadBalancer address is used)."""
    address: str | None = None
    """Fixed address (IP or DNS name) other clusters use to reach this gateway; overrides the
    observed LoadBalancer address. A DNS name makes ServiceEntries use ``resolution: DNS``."""


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    """One member cluster."""

    name: ClusterId
    """Unique cluster name; also the value of the ``topology.istio.io/cluster`` endpoint label,
    so it should equal the Istio cluster ID of that cluster."""
    kubeconfig: KubeconfigFile | None = None
    """Reach the cluster with a kubeconfig file. Exactly one of kubeconfig/secret is set."""
    secret: KubeconfigSecret | None = None
    """Reach the cluster with a kubeconfig stored in a labelled Secret."""
    network: str = ""
    """Istio network of the cluster (``topology.istio.io/network``); informative, see ADR 0001."""
    region: str = ""
    """Locality region of the cluster's workloads (the ``topology.kubernetes.io/region`` of its
    nodes). Required when ``failover.regions`` is set."""
    zone: str = ""
    """Locality zone used for endpoints whose EndpointSlice does not say; also the zone of the
    cluster's gateway endpoint."""
    east_west_gateway: GatewaySettings = field(default_factory=GatewaySettings)
    """The cluster's east-west gateway."""
    trust_domain: str = ""
    """SPIFFE trust domain of the cluster's workloads; empty: the federation's ``trustDomain``."""

    @property
    def locality(self) -> str:
        """``region/zone`` as Istio writes localities; empty if the region is unknown."""
        if not self.region:
            return ""
        return f"{self.region}/{self.zone}" if self.zone else self.region


@dataclass(frozen=True, slots=True)
class FailoverSettings:
    """Cross-region failover written into every DestinationRule."""

    regions: tuple[str, ...] = ()
    """Regions in order of preference. Traffic from a region whose endpoints fail goes to the
    first other region in this list. Empty: no explicit failover (Istio's default order)."""


@dataclass(frozen=True, slots=True)
class OutlierDetectionSettings:
    """``trafficPolicy.outlierDetection`` of every DestinationRule. Istio's locality failover
    does nothing without outlier detection, so it is always written."""

    consecutive_5xx_errors: int = 5
    """Errors in a row before an endpoint is ejected."""
    interval: str = "10s"
    """How often endpoints are analysed (duration: ms, s, m or h)."""
    base_ejection_time: str = "30s"
    """Minimum ejection duration (duration: ms, s, m or h)."""
    max_ejection_percent: int = 100
    """Share of endpoints that may be ejected; 100 lets a whole locality fail over."""


@dataclass(frozen=True, slots=True)
class ListenSettings:
    """Where the federator's own servers listen."""

    http: str = "127.0.0.1:9464"
    """``host:port`` of the HTTP server (/metrics, /healthz, /readyz)."""
    grpc: str = "127.0.0.1:50051"
    """``host:port`` of the gRPC status API."""

    @property
    def http_address(self) -> tuple[str, int]:
        """``http`` as (host, port) (``split_host_port``)."""
        return split_host_port(self.http)


@dataclass(frozen=True, slots=True)
class LeaderElectionSettings:
    """One writer among replicas: a ``coordination.k8s.io`` Lease in the home cluster (R5).

    The timing is client-go's: a standby takes over once the Lease went unrenewed for
    ``leaseDuration`` (as its own clock measured), so a dead leader is replaced within
    ``leaseDuration + retryPeriod``; a leader that could not renew for ``renewDeadline``
    stops writing (the fence), before any standby may take over."""

    enabled: bool = False
    """Elect a leader; only it writes. Needs the home cluster (in a Pod, or
    ``--home-kubeconfig``). Off: this process writes unconditionally (run one replica)."""
    lease_name: str = "meshfed-federator"
    """Name of the Lease, in ``namespace`` of the home cluster."""
    lease_duration_seconds: float = 15.0
    """How long a Lease stays valid after its last renewal, for the standbys."""
    renew_deadline_seconds: float = 10.0
    """The leader writes only while its last successful renewal is younger than this."""
    retry_period_seconds: float = 2.0
    """How often the leader renews and a standby tries to acquire."""

    @property
    def write_deadline_seconds(self) -> float:
        """How long the apiserver may work on a fenced write from its head's arrival: half of
        ``leaseDuration - renewDeadline`` (the time between the end of a leader's tenure and
        the earliest takeover), so a write sent within the tenure is done or dropped before a
        successor may write, with the other half left for clocks and the network."""
        return (self.lease_duration_seconds - self.renew_deadline_seconds) / 2

    def validate(self) -> None:
        if not self.enabled:
            return
        _check_dns_label("leaderElection.leaseName", self.lease_name, subdomain=True)
        if not 0 < self.retry_period_seconds < self.renew_deadline_seconds:
            raise ConfigError(
                "leaderElection.retryPeriod must be > 0 and shorter than renewDeadline "
                "(defaults 2s and 10s)"
            )
        if not self.renew_deadline_seconds < self.lease_duration_seconds:
            raise ConfigError(
                "leaderElection.renewDeadline must be shorter than leaseDuration, or a paused "
                "leader could still write after a standby took over (defaults 10s and 15s)"
            )


@dataclass(frozen=True, slots=True)
class GatewayProbeSettings:
    """How remote east-west gateways are probed (R4): a TCP connect to the gateway port,
    plus a TLS handshake when ``tls`` is set, every ``interval``; ``failureThreshold``
    failures in a row mark a gateway down, one success marks it up again."""

    enabled: bool = True
    """Probe every member's east-west gateway (gateway topology)."""
    interval_seconds: float = 3.0
    """Probe period (Linkerd's gateway probe uses 3 s)."""
    timeout_seconds: float = 1.0
    """Connect (and handshake) timeout of one probe; at most ``interval``."""
    failure_threshold: int = 3
    """Consecutive failed probes before a gateway is reported down."""
    port: int = 15443
    """The gateway port probed (the AUTO_PASSTHROUGH port)."""
    tls: bool = False
    """Also complete a TLS handshake (certificates are not verified: liveness only)."""

    def validate(self) -> None:
        if not 0 < self.timeout_seconds <= self.interval_seconds:
            raise ConfigError("gatewayProbe.timeout must be > 0 and at most gatewayProbe.interval")
        if self.failure_threshold < 1:
            raise ConfigError("gatewayProbe.failureThreshold must be >= 1")
        if not 0 < self.port < 65536:
            raise ConfigError("gatewayProbe.port must be between 1 and 65535")


@dataclass(frozen=True, slots=True)
class FederationConfig:
    """The whole federation: defaults for every service, and the member clusters."""

    clusters: tuple[ClusterSettings, ...] = ()
    """Member clusters. Every exported Service is federated into every one of them."""
    topology: Topology = Topology.GATEWAY
    """Default topology; a Service may override it with the ``meshfed.io/topology`` annotation."""
    host_suffix: str = "clusterset.local"
    """ServiceEntry hosts are ``<name>.<namespace>.svc.<host_suffix>`` (see ADR 0001)."""
    namespace: str = "meshfed-system"
    """The federator's own namespace: kubeconfig Secrets are read only from here."""
    resync_period_seconds: float = 300.0
    """Every key is reconciled at least this often even without events (10 s to 24 h)."""
    failover: FailoverSettings = field(default_factory=FailoverSettings)
    outlier_detection: OutlierDetectionSettings = field(default_factory=OutlierDetectionSettings)
    listen: ListenSettings = field(default_factory=ListenSettings)
    leader_election: LeaderElectionSettings = field(default_factory=LeaderElectionSettings)
    gateway_probe: GatewayProbeSettings = field(default_factory=GatewayProbeSettings)
    trust: TrustSettings = field(default_factory=TrustSettings)
    """``trustDomain`` and ``trustDomainAliases`` (``federator.core.config_policy``)."""
    egress: EgressSettings = field(default_factory=EgressSettings)
    """The federated egress allow-list (``egress:``, docs/security.md)."""
    access: tuple[ServiceAccess, ...] = ()
    """Cross-cluster access policy per global service (``access:``, docs/security.md)."""
    api: ApiSecuritySettings = field(default_factory=ApiSecuritySettings)
    """TLS, mutual TLS and bearer token of the gRPC status API (``api:``, docs/api.md)."""
    drills: DrillSettings = field(default_factory=DrillSettings)
    """Running ``Drill`` objects and evaluating their guards (``drills:``, docs/drills.md)."""
    http: HttpSecuritySettings = field(default_factory=HttpSecuritySettings)
    """TLS, mutual TLS and bearer token of the HTTP port (``http:``, docs/security.md)."""

    @property
    def cluster_ids(self) -> tuple[ClusterId, ...]:
        return tuple(c.name for c in self.clusters)

    def cluster(self, name: str) -> ClusterSettings:
        """The settings of cluster ``name``; ``KeyError`` if it is not a member."""
        for c in self.clusters:
            if c.name == name:
                return c
        raise KeyError(name)

    def validate(self) -> None:
        """Raise ``ConfigError`` for the first invalid field, naming it and the fix."""
        if not self.clusters:
            raise ConfigError("clusters is empty: list at least one member cluster")
        _check_subdomain("hostSuffix", self.host_suffix)
        if self.host_suffix in ("cluster.local", "svc.cluster.local"):
            raise ConfigError(
                f'hostSuffix "{self.host_suffix}" collides with the clusters\' own Service '
                'hosts: use a suffix of its own such as "clusterset.local" (see ADR 0001)'
            )
        _check_dns_label("namespace", self.namespace)
        if not 10 <= self.resync_period_seconds <= 86400:
            raise ConfigError(
                f"resyncPeriod {self.resync_period_seconds:g}s is out of range: "
                "use a period between 10s and 24h"
            )
        _check_listen("listen.http", self.listen.http)
        _check_listen("listen.grpc", self.listen.grpc)
        if self.listen.http == self.listen.grpc:
            raise ConfigError(
                f'listen.grpc "{self.listen.grpc}" is the same as listen.http: '
                "give each server its own port"
            )
        self._validate_outlier()
        self.leader_election.validate()
        self.gateway_probe.validate()
        self.api.validate()
        self.http.validate()
        seen: dict[str, int] = {}
        for i, cluster in enumerate(self.clusters):
            _validate_cluster(i, cluster)
            if cluster.name in seen:
                raise ConfigError(
                    f'clusters[{i}].name "{cluster.name}" is a duplicate of '
                    f"clusters[{seen[cluster.name]}].name: cluster names must be unique"
                )
            seen[cluster.name] = i
        self._validate_failover()
        validate_policy(self)

    def _validate_outlier(self) -> None:
        od = self.outlier_detection
        if od.consecutive_5xx_errors < 1:
            raise ConfigError("outlierDetection.consecutive5xxErrors must be >= 1")
        if not 1 <= od.max_ejection_percent <= 100:
            raise ConfigError("outlierDetection.maxEjectionPercent must be between 1 and 100")
        for name, value in (("interval", od.interval), ("baseEjectionTime", od.base_ejection_time)):
            if not _DURATION.match(value) or int(re.sub(r"\D", "", value)) == 0:
                raise ConfigError(
                    f'outlierDetection.{name} "{value}" is not a positive duration: '
                    'write it like "10s", "500ms", "1m"'
                )

    def _validate_failover(self) -> None:
        known = sorted({c.region for c in self.clusters if c.region})
        seen: set[str] = set()
        for i, region in enumerate(self.failover.regions):
            if region in seen:
                raise ConfigError(
                    f'failover.regions[{i}] "{region}" is listed twice: list each region once'
                )
            seen.add(region)
            if region not in known:
                raise ConfigError(
                    f'failover.regions[{i}] "{region}" is not the region of any cluster; '
                    f"known regions: {', '.join(known) or '(none: set clusters[].region)'}"
                )
        if self.failover.regions:
            for i, cluster in enumerate(self.clusters):
                if not cluster.region:
                    raise ConfigError(
                        f"clusters[{i}].region is empty but failover.regions is set: give "
                        f'cluster "{cluster.name}" the region of its nodes'
                    )


def _validate_cluster(i: int, c: ClusterSettings) -> None:
    where = f"clusters[{i}]"
    if not c.name:
        raise ConfigError(f"{where}.name is missing: give every cluster a unique name")
    if not DNS_LABEL.match(c.name) or len(c.name) > 63:
        raise ConfigError(
            f'{where}.name "{c.name}" is not a valid cluster name: use lowercase letters, '
            "digits and '-' (at most 63), as it becomes a label value"
        )
    if (c.kubeconfig is None) == (c.secret is None):
        raise ConfigError(
            f'{where} ("{c.name}") must set exactly one of kubeconfig (a file path and '
            "context) or secret (a labelled Secret in the federator's namespace)"
        )
    if c.kubeconfig is not None and not c.kubeconfig.path:
        raise ConfigError(f"{where}.kubeconfig.path is missing: give the kubeconfig file path")
    if c.secret is not None:
        _check_dns_label(f"{where}.secret.name", c.secret.name, subdomain=True)
        if not c.secret.key:
            raise ConfigError(f"{where}.secret.key is empty: name the data key (kubeconfig)")
    for name, value in (("network", c.network), ("region", c.region), ("zone", c.zone)):
        if value and (len(value) > 63 or not _LABEL_VALUE.match(value)):
            raise ConfigError(
                f'{where}.{name} "{value}" is not a valid label value: use letters, digits, '
                "'-', '_' and '.', at most 63 characters"
            )
        if "/" in value:
            raise ConfigError(f'{where}.{name} "{value}" must not contain "/"')
    if c.zone and not c.region:
        raise ConfigError(f"{where}.zone is set but region is not: set {where}.region too")
    gw = c.east_west_gateway
    _check_dns_label(f"{where}.eastWestGateway.namespace", gw.namespace)
    if not gw.selector:
        raise ConfigError(
            f"{where}.eastWestGateway.selector is empty: use e.g. {{istio: eastwestgateway}}"
        )
    if gw.address is not None:
        _check_address(f"{where}.eastWestGateway.address", gw.address)

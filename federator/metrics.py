"""The federator's own Prometheus metrics, on a registry of its own (no process globals).

All names start with ``meshfed_federator_``. Per-item events are counted here instead of logged.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class FederatorMetrics:
    """Every metric the federator exports. ``render()`` gives the exposition text."""

    def __init__(self, *, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        p = "meshfed_federator_"
        self.propagation_latency = Histogram(
            p + "propagation_latency_seconds",
            "Source change observed by a watch -> applied in the target cluster.",
            ["target"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.reconciles = Counter(
            p + "reconciles", "Reconciles of a global service by result.", ["result"], registry=r
        )
        self.objects_applied = Counter(
            p + "objects_applied",
            "Objects created or updated (server-side apply).",
            ["cluster", "kind"],
            registry=r,
        )
        self.objects_pruned = Counter(
            p + "objects_pruned", "Owned objects deleted.", ["cluster", "kind"], registry=r
        )
        self.prunes_suppressed = Gauge(
            p + "prunes_suppressed",
            "Objects kept by fail-static in the last reconcile of their service.",
            ["cluster"],
            registry=r,
        )
        self.watch_restarts = Counter(
            p + "watch_restarts",
            "Watch restarts by reason (timeout, expired = 410 relist, error).",
            ["cluster", "resource", "reason"],
            registry=r,
        )
        self.cluster_up = Gauge(
            p + "cluster_up",
            "1 if every watch of the cluster is connected.",
            ["cluster"],
            registry=r,
        )
        self.cluster_synced = Gauge(
            p + "cluster_synced",
            "1 if every watch of the cluster completed its initial list.",
            ["cluster"],
            registry=r,
        )
        self.cluster_last_sync_age = Gauge(
            p + "cluster_last_sync_age_seconds",
            "Seconds since the cluster's data was last known current (staleness).",
            ["cluster"],
            registry=r,
        )
        self.conflicts = Gauge(
            p + "conflicts",
            "Current export conflicts (the oldest export wins) by reason.",
            ["reason"],
            registry=r,
        )
        self.queue_depth = Gauge(p + "workqueue_depth", "Keys waiting.", registry=r)
        self.queue_active = Gauge(p + "workqueue_active", "Keys being reconciled now.", registry=r)
        self.queue_retrying = Gauge(
            p + "workqueue_retrying",
            "Keys waiting out a retry backoff (they are queued again when it ends).",
            registry=r,
        )
        self.queue_drops = Gauge(
            p + "workqueue_drops", "Keys refused by the full work queue (total).", registry=r
        )
        self.credential_reloads = Counter(
            p + "credential_reloads",
            "Clients rebuilt because a member's kubeconfig (Secret or file) changed (R7).",
            ["cluster"],
            registry=r,
        )
        self.credential_reload_failures = Counter(
            p + "credential_reload_failures",
            "Changed kubeconfigs refused (unsafe, unlabelled, unreadable): the old client stays.",
            ["cluster"],
            registry=r,
        )
        self.gateway_up = Gauge(
            p + "gateway_up",
            "1 unless the cluster's east-west gateway failed failureThreshold probes in a row.",
            ["cluster"],
            registry=r,
        )
        self.gateway_probe_failures = Counter(
            p + "gateway_probe_failures",
            "Failed east-west gateway probes.",
            ["cluster"],
            registry=r,
        )
        self.leader = Gauge(
            p + "leader", "1 while this replica holds the leader Lease and may write.", registry=r
        )
        self.leader_transitions = Counter(
            p + "leader_transitions", "Times this replica became the leader.", registry=r
        )
        self.writes_fenced = Counter(
            p + "writes_fenced",
            "Write requests not sent because this replica did not hold the Lease (R5).",
            registry=r,
        )
        self.events_dropped = Counter(
            p + "events_dropped", "Kubernetes Events not recorded (failed or capped).", registry=r
        )
        # Drills (docs/drills.md): named without the federator prefix, as the drill CLI and
        # reports read them next to the telemetry store's own drill series.
        self.drills_total = Counter(
            "meshfed_drills", "Drills that reached a terminal phase, by phase.", ["result"],
            registry=r,
        )  # fmt: skip
        self.drill_step_propagation = Histogram(
            "meshfed_drill_step_propagation_seconds",
            "Drill step started -> its objects applied (and served by istiod) in a target.",
            ["cluster"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.drill_breach_to_rollback = Histogram(
            "meshfed_drill_breach_to_rollback_seconds",
            "Guard breach recorded -> rollback applied in every target.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.drill_action_retries = Counter(
            "meshfed_drill_action_retries",
            "Drill actions tried again after a retryable failure (drills.transientRetry).",
            ["action"],
            registry=r,
        )
        self.drills_running = Gauge(
            "meshfed_drills_running", "Drills in a non-terminal phase, driven here.", registry=r
        )
        self.drills_frozen = Gauge(
            "meshfed_drills_frozen", "1 while the freeze ConfigMap exists.", registry=r
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)

"""``meshfed console``: a small web UI over the federator's gRPC API and the store's query APIs.

It owns no state: every page is a view of what ``meshfed federate`` (clusters, global services,
applied changes, drills) and ``meshfed collect`` / ``meshfed store serve`` (Prometheus-compatible
metrics, traces, logs, self-metrics) answer right now. Pure shaping lives in ``views`` and
``promql``; ``sources`` holds the two clients; ``app`` the HTTP routes and the event stream.
"""

"""HTTP query APIs: Prometheus-compatible metrics queries, traces and logs, in one app.

``app.build_app`` mounts them all; ``prometheus`` holds the Prometheus routes and
``prom_params`` their parameter parsing and JSON encoding.
"""

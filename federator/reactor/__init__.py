"""Reactor: per-cluster caches fed by watches, event -> key mapping, the work queue, the runner."""

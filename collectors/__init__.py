"""Telemetry collectors and the Redis-backed store behind them.

Receivers (StatsD, Fluentd Forward, remote_write, OTLP) turn wire formats into the frozen
records of :mod:`collectors._core.model`; the store keeps them in Redis and answers Prometheus,
trace and log queries. Nothing here knows about the federator.
"""

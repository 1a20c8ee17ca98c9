"""Prometheus receivers: remote_write 1.0 (push) and federation from clusters' Prometheus (pull)."""

"""Helpers shared by tests of several packages (and by the benchmarks): certificates,
remote_write bodies, child processes, harnesses that run our components against real peers,
and the pytest plugins registered in ``tests/conftest.py`` (sandbox, Prometheus peer)."""

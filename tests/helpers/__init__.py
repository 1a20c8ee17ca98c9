"""Helpers shared by tests of several packages (and by the benchmarks): certificates,
remote_write bodies, child processes. They import nothing from meshfed's own packages."""

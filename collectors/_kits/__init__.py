"""Runtime kits shared by the upper layers: the HTTP server on a bound socket, ending owned
tasks (``cancel_and_wait``), and the jittered-backoff retry of store writes.

They do I/O or run tasks (unlike ``_core``), so the pure layers never import them
(import-linter).
"""

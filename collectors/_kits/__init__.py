"""Runtime kits shared by the upper layers: the HTTP server on a bound socket and ending
owned tasks (``cancel_and_wait``).

They do I/O or run tasks (unlike ``_core``), so the pure layers never import them
(import-linter).
"""

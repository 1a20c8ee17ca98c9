"""Runtime kits shared by the upper layers: the HTTP server on a bound socket, task helpers.

They do I/O (unlike ``_core``), so the pure layers never import them (import-linter).
"""
